// SPDX-License-Identifier: GPL-2.0-or-later
// pcpd daemon helpers: epoch persistence (R-EPOCH-3), the announcement schedule (R-ANN-4,
// R-PMP-4), announcement targets (R-ANN-5) and the ingress filter (R-HDR-2).
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "config/config_parser.hpp"
#include "config/interface_table.hpp"
#include "pcpd/announce_schedule.hpp"
#include "pcpd/announce_targets.hpp"
#include "pcpd/epoch_store.hpp"
#include "pcpd/ingress_filter.hpp"

using namespace pcpd;
using namespace pcpd::daemon;
using core::Millis;

namespace {

wire::IpAddr ip(const char* s) { return *wire::IpAddr::parse(s); }
wire::Prefix pfx(const char* s) { return *wire::Prefix::parse(s); }

}  // namespace

TEST_CASE("R-EPOCH-3: epoch record round trip and malformed files") {
  EpochRecord r{"0f6e1c2a-1111-2222-3333-444455556666", Millis(123456)};
  const std::string text = format_epoch_record(r);
  CHECK(text == "boot_id=0f6e1c2a-1111-2222-3333-444455556666\norigin_ms=123456\n");
  CHECK(parse_epoch_record(text) == r);
  CHECK_FALSE(parse_epoch_record("").has_value());
  CHECK_FALSE(parse_epoch_record("boot_id=x\n").has_value());
  CHECK_FALSE(parse_epoch_record("origin_ms=5\n").has_value());
  CHECK_FALSE(parse_epoch_record("boot_id=\norigin_ms=5\n").has_value());
  CHECK_FALSE(parse_epoch_record("boot_id=x\norigin_ms=-5\n").has_value());
  CHECK_FALSE(parse_epoch_record("boot_id=x\norigin_ms=5x\n").has_value());
  CHECK_FALSE(parse_epoch_record("boot_id=x\norigin_ms=5\nextra=1\n").has_value());
  CHECK_FALSE(parse_epoch_record("garbage").has_value());
}

TEST_CASE("R-EPOCH-3: the epoch stays continuous only after a full recovery in the same boot") {
  const std::optional<EpochRecord> stored = EpochRecord{"boot-a", Millis(1000)};
  CHECK(keep_epoch(stored, "boot-a", true, Millis(5000)));
  CHECK_FALSE(keep_epoch(stored, "boot-b", true, Millis(5000)));   // rebooted: kernel state lost
  CHECK_FALSE(keep_epoch(stored, "boot-a", false, Millis(5000)));  // recovery failed or conflicted
  CHECK_FALSE(keep_epoch(std::nullopt, "boot-a", true, Millis(5000)));
  CHECK_FALSE(keep_epoch(stored, "", true, Millis(5000)));          // boot id unknown
  CHECK_FALSE(keep_epoch(stored, "boot-a", true, Millis(999)));     // origin in the future
}

TEST_CASE("R-EPOCH-3: EpochStore saves atomically and loads back") {
  char dir_template[] = "/tmp/pcpd-epoch-test-XXXXXX";
  REQUIRE(mkdtemp(dir_template) != nullptr);
  const std::string dir = std::string(dir_template) + "/state";  // created by save()
  EpochStore store(dir);
  CHECK(store.path() == dir + "/epoch");
  CHECK_FALSE(store.load().has_value());
  REQUIRE(store.save(EpochRecord{"boot-a", Millis(42)}).has_value());
  CHECK(store.load() == EpochRecord{"boot-a", Millis(42)});
  REQUIRE(store.save(EpochRecord{"boot-b", Millis(43)}).has_value());
  CHECK(store.load() == EpochRecord{"boot-b", Millis(43)});
  CHECK(access((dir + "/epoch.tmp").c_str(), F_OK) != 0);
  {
    std::ofstream out(dir + "/epoch");
    out << "corrupt";
  }
  CHECK_FALSE(store.load().has_value());
  EpochStore unwritable("/proc/pcpd-no-such-dir");
  auto r = unwritable.save(EpochRecord{"x", Millis(1)});
  CHECK_FALSE(r.has_value());
  std::remove((dir + "/epoch").c_str());
  rmdir(dir.c_str());
  rmdir(dir_template);
}

TEST_CASE("R-EPOCH-3: the kernel boot id is readable") {
  auto id = read_boot_id();
  REQUIRE(id.has_value());
  CHECK(id->size() == 36);
  CHECK(id == read_boot_id());
  CHECK_FALSE(read_boot_id("/nonexistent/boot_id").has_value());
}

TEST_CASE("R-ANN-4: copies at once, then 250 ms, doubling") {
  AnnounceSchedule s;
  CHECK_FALSE(s.active());
  CHECK(s.next_due() == Millis::max());
  CHECK_FALSE(s.take(Millis(0)));
  s.start(4, Millis(10'000));
  CHECK(s.active());
  CHECK(s.next_due() == Millis(10'000));
  CHECK_FALSE(s.take(Millis(9'999)));
  CHECK(s.take(Millis(10'000)));
  CHECK(s.next_due() == Millis(10'250));
  CHECK_FALSE(s.take(Millis(10'249)));
  CHECK(s.take(Millis(10'260)));  // late timer: the next gap still counts from the send
  CHECK(s.next_due() == Millis(10'760));
  CHECK(s.take(Millis(10'760)));
  CHECK(s.next_due() == Millis(11'760));
  CHECK(s.take(Millis(11'760)));
  CHECK(s.sent() == 4);
  CHECK_FALSE(s.active());
  CHECK(s.next_due() == Millis::max());
  CHECK_FALSE(s.take(Millis(20'000)));
}

TEST_CASE("R-ANN-4: ten copies span 250 ms * (2^9 - 1) after the first; a restart begins anew") {
  AnnounceSchedule s;
  s.start(10, Millis(0));
  Millis t(0);
  std::vector<Millis> gaps;
  Millis last(0);
  while (s.active()) {
    t = s.next_due();
    REQUIRE(s.take(t));
    if (s.sent() > 1) gaps.push_back(t - last);
    last = t;
  }
  REQUIRE(gaps.size() == 9);
  for (std::size_t i = 1; i < gaps.size(); ++i) CHECK(gaps[i] >= 2 * gaps[i - 1]);
  CHECK(gaps.front() == Millis(250));
  CHECK(t == Millis(250 * 511));
  s.start(2, Millis(1'000'000));
  CHECK(s.sent() == 0);
  CHECK(s.take(Millis(1'000'000)));
  CHECK(s.next_due() == Millis(1'000'250));
  s.cancel();
  CHECK_FALSE(s.active());
}

TEST_CASE("R-HDR-2: ingress filter checks interface, source prefix and unicast destination") {
  IngressFilter f({2, 3}, {pfx("192.0.2.0/24"), pfx("2001:db8:1::/64")});
  const auto dst4 = ip("192.0.2.1");
  const auto dst6 = ip("2001:db8:1::1");
  CHECK(f.check(2, ip("192.0.2.10"), dst4) == IngressFilter::Verdict::Accept);
  CHECK(f.check(3, ip("2001:db8:1::10"), dst6) == IngressFilter::Verdict::Accept);
  CHECK(f.check(4, ip("192.0.2.10"), dst4) == IngressFilter::Verdict::WrongInterface);  // e.g. WAN
  CHECK(f.check(0, ip("192.0.2.10"), dst4) == IngressFilter::Verdict::WrongInterface);
  CHECK(f.check(2, ip("198.51.100.10"), dst4) == IngressFilter::Verdict::WrongSource);
  CHECK(f.check(2, ip("fe80::10"), dst6) == IngressFilter::Verdict::WrongSource);
  CHECK(f.check(2, ip("192.0.2.10"), ip("224.0.0.1")) == IngressFilter::Verdict::NotUnicast);
  CHECK(f.check(2, ip("192.0.2.10"), ip("255.255.255.255")) == IngressFilter::Verdict::NotUnicast);
  CHECK(f.check(3, ip("2001:db8:1::10"), ip("ff02::1")) == IngressFilter::Verdict::NotUnicast);
  IngressFilter none;
  CHECK(none.check(2, ip("192.0.2.10"), dst4) == IngressFilter::Verdict::WrongInterface);
}

TEST_CASE("R-ANN-5: announcements leave from the interface's unicast (global IPv6) address") {
  CHECK(all_hosts_v4() == ip("224.0.0.1"));
  CHECK(all_nodes_v6() == ip("ff02::1"));
  config::Config c = config::parse_config_text(
      "[interfaces]\ninternal = [\"lan0\", \"lan1\", \"lan2\", \"gone0\"]\nexternal = \"wan0\"\n"
      "internal_prefixes = [\"192.0.2.0/24\", \"2001:db8:1::/64\"]\n",
      "t.conf");
  config::InterfaceTable t;
  t.interfaces.push_back({"lan0", 2,
                          {{ip("169.254.1.1"), 16},
                           {ip("198.51.100.1"), 24},
                           {ip("192.0.2.1"), 24},
                           {ip("fe80::1"), 64},
                           {ip("2001:db8:1::1"), 64}}});
  t.interfaces.push_back({"lan1", 3, {{ip("fe80::2"), 64}, {ip("2001:db8:9::1"), 64}}});
  t.interfaces.push_back({"lan2", 4, {{ip("fe80::3"), 64}}});  // nothing usable
  t.interfaces.push_back({"wan0", 5, {{ip("203.0.113.1"), 24}}});
  auto targets = announce_targets(c, t);
  REQUIRE(targets.size() == 2);
  CHECK(targets[0].interface == "lan0");
  CHECK(targets[0].ifindex == 2);
  CHECK(targets[0].source_v4 == ip("192.0.2.1"));  // the one inside internal_prefixes
  CHECK(targets[0].source_v6 == ip("2001:db8:1::1"));
  CHECK(targets[1].interface == "lan1");
  CHECK_FALSE(targets[1].source_v4.has_value());
  CHECK(targets[1].source_v6 == ip("2001:db8:9::1"));  // global, never fe80::

  config::Config v4only = config::parse_config_text(
      "[interfaces]\ninternal = [\"lan0\"]\nexternal = \"wan0\"\ninternal_prefixes = [\"192.0.2.0/24\"]\n",
      "t.conf");
  targets = announce_targets(v4only, t);
  REQUIRE(targets.size() == 1);
  CHECK(targets[0].source_v4 == ip("192.0.2.1"));
  CHECK_FALSE(targets[0].source_v6.has_value());  // IPv6 not served
}
