/// The shell scripts that run inside the guest (busybox ash). Their text is part of the cache key.
///
/// Markers the host waits for on the serial console: `APPLIANCE-PROBE-OK`, `appliance-init: network <ip>`,
/// `appliance-init: applianced started`, `bare: httpd up`.
enum GuestScripts {
    /// Replaced by the space-separated module names, in load order, when the initramfs is written.
    static let modulesPlaceholder = "@MODULES@"
    /// Replaced by the default guest port in `applianceInit`.
    static let portPlaceholder = "@PORT@"

    /// `/init` of `initrd.img`: drivers, the root disk, then `switch_root` to `/sbin/appliance-init`.
    static let initramfsInit = """
        #!/bin/sh
        # Appliance initramfs: load the virtio drivers, mount the root disk, hand over to /sbin/appliance-init.
        export PATH=/bin
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        mount -t devtmpfs devtmpfs /dev
        exec </dev/console >/dev/console 2>&1
        # End the firmware's last line, so each marker below is a line of its own on the serial console.
        echo

        for arg in $(cat /proc/cmdline); do
            if [ "$arg" = appliance.probe=1 ]; then
                # The provisioner's test boot: reaching user space shows the hypervisor runs this kernel.
                echo APPLIANCE-PROBE-OK
                poweroff -f
            fi
        done

        for module in @MODULES@; do
            insmod "/lib/modules/$module.ko" || echo "initramfs: insmod $module failed"
        done

        tries=0
        while [ ! -b /dev/vda ]; do
            tries=$((tries + 1))
            if [ "$tries" -gt 100 ]; then
                echo "initramfs: no root disk /dev/vda after 10 s; powering off"
                poweroff -f
            fi
            usleep 100000
        done
        if ! mount -t ext4 -o rw /dev/vda /newroot; then
            echo "initramfs: cannot mount /dev/vda; powering off"
            poweroff -f
        fi
        mount --move /proc /newroot/proc
        mount --move /sys /newroot/sys
        mount --move /dev /newroot/dev
        exec switch_root /newroot /sbin/appliance-init

        """

    /// `/sbin/appliance-init` on the disk: PID 1 after `switch_root`.
    ///
    /// Brings up the network, starts applianced and restarts it when it fails. applianced exiting with status 0
    /// (after its API shutdown request) or the ACPI power button (`virsh shutdown`) powers the VM off cleanly;
    /// status 10 (its API reboot request) reboots it.
    static let applianceInit = """
        #!/bin/sh
        # PID 1 of the appliance: network, then applianced (restarted when it fails); a clean stop powers off.
        export PATH=/usr/sbin:/usr/bin:/sbin:/bin
        export HOME=/root
        [ -e /proc/self ] || mount -t proc proc /proc
        [ -e /sys/kernel ] || mount -t sysfs sysfs /sys
        [ -e /dev/null ] || mount -t devtmpfs devtmpfs /dev
        mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
        exec </dev/null >/dev/console 2>&1
        rm -rf /tmp/* /tmp/.[!.]* /tmp/..?*

        # Grow the root file system to fill its disk: the image's is 1 GiB, a VM's disk is usually larger.
        if output=$(resize2fs /dev/vda 2>&1); then
            case "$output" in
                *"Nothing to do"*) ;;
                *) echo "appliance-init: root file system resized to fill /dev/vda" ;;
            esac
        else
            echo "appliance-init: resize2fs /dev/vda failed: $output"
        fi

        hostname=""
        port=@PORT@
        id=""
        keys=""
        for arg in $(cat /proc/cmdline); do
            case "$arg" in
                appliance.hostname=*) hostname="${arg#appliance.hostname=}" ;;
                appliance.port=*) port="${arg#appliance.port=}" ;;
                appliance.id=*) id="${arg#appliance.id=}" ;;
                appliance.vendorkey=*) keys="$keys ${arg#appliance.vendorkey=}" ;;
            esac
        done
        hostname "${hostname:-appliance}"

        ip link set lo up
        ip link set eth0 up
        until udhcpc -i eth0 -n -q -t 10 -s /usr/share/udhcpc/default.script >/dev/null; do
            echo "appliance-init: no DHCP lease on eth0; trying again"
            sleep 5
        done
        address=$(ip -4 addr show dev eth0 | sed -n 's/.*inet \\([0-9.]*\\)\\/.*/\\1/p' | head -n 1)
        echo "appliance-init: network $address"

        # The ACPI power button (virsh shutdown) runs /etc/acpi/PWRF/00000080.
        acpid -c /etc/acpi -l /run/acpid.log -p /run/acpid.pid || echo "appliance-init: acpid did not start"

        # A reboot request (A8) makes applianced exit with status 10; this init then reboots the VM.
        set -- --data-dir /var/lib/applianced --listen "$address:$port" --log-level notice --reboot-exit-status 10
        [ -n "$hostname" ] && set -- "$@" --hostname "$hostname"
        [ -n "$id" ] && set -- "$@" --appliance-id "$id"
        # Vendor keys that packages must be signed with: base64 SubjectPublicKeyInfo on the kernel command line.
        n=0
        for key in $keys; do
            n=$((n + 1))
            mkdir -p /etc/appliance
            printf -- '-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n' "$key" >"/etc/appliance/vendor-$n.pem"
            set -- "$@" --vendor-key "/etc/appliance/vendor-$n.pem"
        done

        while [ ! -e /run/appliance-poweroff ]; do
            /usr/lib/appliance/applianced "$@" &
            pid=$!
            echo "$pid" >/run/applianced.pid
            echo "appliance-init: applianced started"
            # The power button may have been pressed before the pid file existed.
            [ -e /run/appliance-poweroff ] && kill -TERM "$pid"
            wait "$pid"
            status=$?
            rm -f /run/applianced.pid
            if [ "$status" -eq 10 ] && [ ! -e /run/appliance-poweroff ]; then
                echo "appliance-init: rebooting"
                sync
                mount -o remount,ro / || sync
                reboot -f
            fi
            if [ "$status" -eq 0 ] || [ -e /run/appliance-poweroff ]; then
                echo "appliance-init: applianced stopped (status $status)"
                break
            fi
            echo "appliance-init: applianced exited with status $status; restarting in 2 s"
            sleep 2
        done

        echo "appliance-init: powering off"
        sync
        mount -o remount,ro / || sync
        poweroff -f

        """

    /// `/etc/acpi/PWRF/00000080`: busybox acpid runs it for the ACPI power button.
    static let powerButton = """
        #!/bin/sh
        # ACPI power button (virsh shutdown): stop applianced; appliance-init then syncs and powers off.
        touch /run/appliance-poweroff
        echo "appliance-init: power button pressed" >/dev/console
        [ -f /run/applianced.pid ] && kill -TERM "$(cat /run/applianced.pid)"
        # applianced normally stops in seconds; do not let a hung one keep the VM up.
        sleep 60
        echo "appliance-init: applianced did not stop; powering off anyway" >/dev/console
        sync
        poweroff -f

        """

    /// `/usr/share/udhcpc/default.script`: puts the lease on the interface with the default route and DNS servers.
    static let udhcpcScript = """
        #!/bin/sh
        # udhcpc event script: address, default route and /etc/resolv.conf (a link to /run/resolv.conf).
        case "$1" in
            deconfig)
                ip -4 addr flush dev "$interface"
                ip link set "$interface" up
                ;;
            bound | renew)
                if ! ip -4 addr show dev "$interface" | grep -q "inet $ip/${mask:-24} "; then
                    ip -4 addr flush dev "$interface"
                    ip addr add "$ip/${mask:-24}" broadcast + dev "$interface"
                fi
                if [ -n "$router" ]; then
                    ip route replace default via "${router%% *}" dev "$interface"
                fi
                {
                    [ -n "$domain" ] && echo "search $domain"
                    for server in $dns; do
                        echo "nameserver $server"
                    done
                } >/run/resolv.conf.new
                mv /run/resolv.conf.new /run/resolv.conf
                ;;
        esac
        exit 0

        """

    /// `/init` of `bare-initrd.img`: network and busybox httpd, the baseline for the boot-time benchmark.
    static let bareInit = """
        #!/bin/sh
        # Baseline guest: the same kernel and busybox, network and a static web page, nothing else.
        export PATH=/bin
        mount -t proc proc /proc
        mount -t sysfs sysfs /sys
        mount -t devtmpfs devtmpfs /dev
        exec </dev/console >/dev/console 2>&1
        for module in @MODULES@; do
            insmod "/lib/modules/$module.ko" || echo "bare: insmod $module failed"
        done
        ip link set lo up
        ip link set eth0 up
        if ! udhcpc -i eth0 -n -q -t 10 -s /usr/share/udhcpc/default.script >/dev/null; then
            echo "bare: no DHCP lease; powering off"
            poweroff -f
        fi
        httpd -f -p 80 -h /www &
        echo "bare: httpd up"
        while :; do
            sleep 3600
        done

        """
}
