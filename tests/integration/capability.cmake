# SPDX-License-Identifier: GPL-2.0-or-later
# CAPABILITY (draft-boucadair-hops-capability-discovery-00) between the real pcpd and pcpc in the
# three-namespace lab (scripts/lab.sh). Root only: skips (77) outside CI when not root.
pcpd_add_netns_test(it_capability integration/it_capability.sh)
