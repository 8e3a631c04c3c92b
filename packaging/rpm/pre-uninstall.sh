# evidentia.rpm %preun. $1: 0 = erase, 1 = upgrade (the old package's scriptlet).
if [ "$1" -eq 0 ] && command -v systemctl >/dev/null 2>&1; then
    # As %systemd_preun: stop and disable on erase; on upgrade it keeps running.
    if [ -d /run/systemd/system ]; then
        systemctl --no-reload disable --now evidentia.service >/dev/null 2>&1 || :
    else
        systemctl --no-reload disable evidentia.service >/dev/null 2>&1 || :
    fi
fi
exit 0
