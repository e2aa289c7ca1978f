# SPDX-License-Identifier: GPL-2.0-or-later
# pcpd_warnings(target): the project's warning set; -Werror when PCPD_WERROR is on (CI).
function(pcpd_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
                         -Wold-style-cast -Wcast-align -Wnull-dereference -Wdouble-promotion)
  if(PCPD_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# pcpd_strict_conversions(target): -Wconversion for the wire codec, where a silent narrowing is a bug.
function(pcpd_strict_conversions target)
  target_compile_options(${target} PRIVATE -Wconversion -Wsign-conversion)
endfunction()
