# evidentia.rpm %post. $1: 1 = first install, 2 = upgrade.
set -e
# System user/group, /etc/evidentia, /var/lib/evidentia, secrets.env (only if absent).
/usr/lib/evidentia/evidentia-setup configure
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
if [ "$1" -eq 1 ] && command -v systemctl >/dev/null 2>&1; then
    # As %systemd_post: enablement follows the distribution's preset policy.
    systemctl --no-reload preset evidentia.service >/dev/null 2>&1 || :
    echo "evidentia: installed. Start it with: systemctl enable --now evidentia"
fi
exit 0
