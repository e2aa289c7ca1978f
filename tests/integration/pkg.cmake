# SPDX-License-Identifier: GPL-2.0-or-later
# Packaging test (label netns, root): builds the .deb with scripts/build-deb.sh (lintian
# --fail-on error), installs it with apt into a fresh debootstrap'ed Debian 12 root, checks its
# files, user, unit (systemd-analyze verify) and man pages, then runs the packaged pcpd in the
# scripts/lab.sh namespace lab the way systemd/pcpd.service starts it, then boots the root under
# systemd-nspawn for the service's lifecycle (enable, restart, reload, start limit, remove,
# purge). Takes about 4-6 minutes (build ~80 s, debootstrap ~60 s with a nearby mirror) and
# needs the Debian mirror from the machine's apt configuration.
pcpd_add_netns_test(pkg_deb integration/pkg_deb.sh)
