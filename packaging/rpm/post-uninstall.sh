# evidentia.rpm %postun. $1: 0 = erase, 1 = upgrade (the old package's scriptlet).
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        # As %systemd_postun_with_restart: restart after upgrade, only if it was running.
        systemctl try-restart evidentia.service >/dev/null 2>&1 || :
    fi
fi
if [ "$1" -eq 0 ]; then
    echo "evidentia: removed; kept /etc/evidentia (config, secrets.env) and /var/lib/evidentia (data)."
    echo "evidentia: to delete them too: rm -rf /etc/evidentia /var/lib/evidentia"
fi
exit 0
