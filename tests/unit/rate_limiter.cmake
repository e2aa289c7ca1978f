# SPDX-License-Identifier: GPL-2.0-or-later
# Request rate limits (RFC 6887 §18.1): core RateLimiter and its use by Server.
pcpd_add_test(test_core_rate_limiter
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/core_rate_limiter.cpp
  LIBS pcp_core)
# [limits] keys of pcpd.conf.
pcpd_add_test(test_config_limits
  SOURCES ${CMAKE_CURRENT_LIST_DIR}/core_rate_limiter_config.cpp
  LIBS pcp_config)
