# SPDX-License-Identifier: GPL-2.0-or-later
# Packaging test (label netns, root): builds the .deb with scripts/build-deb.sh (lintian
# --fail-on error), installs it with apt into a fresh debootstrap'ed Debian 12 root, checks its
# files, user, unit (systemd-analyze verify) and man pages, then runs the packaged pcpd in the
# scripts/lab.sh namespace lab the way systemd/pcpd.service starts it, then boots the root under
# systemd-nspawn for the service's lifecycle (enable, kill -9, restart with 50,000 mappings,
# reload, nftables restart and reload, upgrade, start limit, LoadCredential, remove, purge).
# Takes about 7 minutes on a quiet 2-core machine (the package build ~3 of them) and over 10
# with a CPU hog beside it, hence its own timeout; needs the Debian mirror from the machine's
# apt configuration.
pcpd_add_netns_test(pkg_deb integration/pkg_deb.sh)
set_tests_properties(pkg_deb PROPERTIES TIMEOUT 1800)
