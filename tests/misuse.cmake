# misuse.cmake — the checking and hardened modes (issue 5, docs/CHECKING.md).
#
#   misuse_<program>_<case>_{linked,preload}        tests/misuse/<program>.c
#         commits its bug; it must die by SIGABRT with exactly the message of
#         its EXPECT line (tests/misuse/run.sh).  Linked: with kiln_static.
#         Preload: a plain build run with LD_PRELOAD=libkiln.so.
#   misuse_<program>_<case>_{linked,preload}_clean  the same program without
#         its bug ("clean" argument): exit 0, no report.
#   check_<test>         every cmocka program of the regular suite again under
#         KILN_CHECK=1, failing on any false positive (check_suite.sh; the
#         white-box tests of core internals are left out, see below).
#   check_program_<name> the real programs of programs.cmake under KILN_CHECK=1.
#   secure_<test>        the same programs under KILN_SECURE=1 (its defences
#         change no contract: only the deliberate misuse may report).
#   valgrind_memcheck    with -DKILN_VALGRIND=ON and valgrind installed:
#         memcheck reports a leak and a use after free in a program linked
#         with Kiln.
#
# Everything here needs Kiln to own malloc: not in the sanitizer builds.
if(NOT KILN_OVERRIDE OR NOT TARGET kiln)
  return()
endif()

set(KILN_MISUSE_DIR ${CMAKE_CURRENT_LIST_DIR}/misuse)
set(KILN_MISUSE_RUN bash ${KILN_MISUSE_DIR}/run.sh)

# program -> its cases (the first argument it gets; also the EXPECT key).
set(KILN_MISUSE_double_free small medium huge aligned aligned_secure)
set(KILN_MISUSE_double_free_realloc realloc)
set(KILN_MISUSE_invalid_free stack static interior interior_huge foreign destroyed)
set(KILN_MISUSE_free_sized size aligned alignment)
set(KILN_MISUSE_overflow 1 24 48 100 4096 100000 3000000 realloc grown)
set(KILN_MISUSE_underflow underflow)
set(KILN_MISUSE_write_after_free exit churn)
set(KILN_MISUSE_leaks leaks)

foreach(program double_free double_free_realloc invalid_free free_sized overflow underflow write_after_free leaks)
  set(src ${KILN_MISUSE_DIR}/${program}.c)
  foreach(variant linked plain)
    set(target misuse_${program}_${variant})
    add_executable(${target} ${src})
    # Exact sites: no optimisation, frame pointers, debug info; the bugs are
    # deliberate, so the compiler's own warnings about them are off.
    target_compile_options(${target} PRIVATE -O0 -g -fno-omit-frame-pointer -fno-builtin -Wall
      -Wno-free-nonheap-object -Wno-use-after-free -Wno-array-bounds -Wno-stringop-overflow)
    if(variant STREQUAL "linked")
      target_link_libraries(${target} PRIVATE kiln_static)
      target_compile_definitions(${target} PRIVATE KILN_MISUSE_LINKED=1)
    endif()
    target_link_libraries(${target} PRIVATE Threads::Threads)
  endforeach()
  foreach(case ${KILN_MISUSE_${program}})
    set(mode abort)
    set(env KILN_CHECK=1)
    if(program STREQUAL "leaks")
      set(mode report)
      set(env KILN_LEAKS=1)
    elseif(case STREQUAL "churn")
      set(env KILN_CHECK=1 KILN_QUARANTINE=4096)
    elseif(case MATCHES "_secure$")
      set(env KILN_CHECK=1 KILN_SECURE=1)
    endif()
    foreach(clean "" "clean")
      set(how ${mode})
      set(suffix "")
      if(clean)
        set(how clean)
        set(suffix _clean)
      endif()
      add_test(NAME misuse_${program}_${case}_linked${suffix}
               COMMAND ${KILN_MISUSE_RUN} ${how} ${src} ${case} --
                       env ${env} $<TARGET_FILE:misuse_${program}_linked> ${case} ${clean})
      add_test(NAME misuse_${program}_${case}_preload${suffix}
               COMMAND ${KILN_MISUSE_RUN} ${how} ${src} ${case} --
                       env ${env} LD_PRELOAD=$<TARGET_FILE:kiln> $<TARGET_FILE:misuse_${program}_plain> ${case} ${clean})
      set_tests_properties(misuse_${program}_${case}_linked${suffix} misuse_${program}_${case}_preload${suffix}
                           PROPERTIES TIMEOUT 60 LABELS misuse)
    endforeach()
  endforeach()
endforeach()
# The leak report also through KILN_CHECK=leaks.
add_test(NAME misuse_leaks_check_leaks_linked
         COMMAND ${KILN_MISUSE_RUN} report ${KILN_MISUSE_DIR}/leaks.c leaks --
                 env KILN_CHECK=leaks $<TARGET_FILE:misuse_leaks_linked>)
set_tests_properties(misuse_leaks_check_leaks_linked PROPERTIES TIMEOUT 60 LABELS misuse)

# tests/test_check.c walks its own stack: frame pointers in any build type.
if(TARGET test_check)
  target_compile_options(test_check PRIVATE -fno-omit-frame-pointer -g)
endif()

# --- the regular suite under KILN_CHECK=1 ---------------------------------------
# Left out: the white-box tests of core internals, which drive pages, free
# lists and direct slots by hand (test_page waits for remote frees to land on
# a page: the quarantine holds them) or assert their exact layout.
set(KILN_CHECK_WHITE_BOX test_heap test_huge test_page test_ptr test_size_class)
set(KILN_CHECK_ENV KILN_CHECK=1 KILN_ON_ERROR=report CMOCKA_MESSAGE_OUTPUT=stdout)
set(KILN_CHECK_SUITE bash ${KILN_MISUSE_DIR}/check_suite.sh)
set(KILN_CHECK_TESTS)
foreach(src ${KILN_TEST_SOURCES})
  get_filename_component(name ${src} NAME_WE)
  if(NOT name IN_LIST KILN_CHECK_WHITE_BOX AND TARGET ${name})
    list(APPEND KILN_CHECK_TESTS ${name})
  endif()
endforeach()
foreach(name ${KILN_CHECK_TESTS})
  add_test(NAME check_${name}
           COMMAND ${KILN_CHECK_SUITE} ${name} ${KILN_MISUSE_DIR}/check_suite.allow --
                   env ${KILN_CHECK_ENV} $<TARGET_FILE:${name}>)
  set_tests_properties(check_${name} PROPERTIES TIMEOUT 600 LABELS check)
endforeach()
# test_api and test_api_memory through libkiln.so (defined by programs.cmake,
# included after us).
foreach(part test_api test_api_memory)
  add_test(NAME check_${part}_override
           COMMAND ${KILN_CHECK_SUITE} ${part}_override ${KILN_MISUSE_DIR}/check_suite.allow --
                   env ${KILN_CHECK_ENV} ${CMAKE_CURRENT_BINARY_DIR}/${part}_override)
  set_tests_properties(check_${part}_override PROPERTIES TIMEOUT 600 LABELS check)
  add_test(NAME secure_${part}_override
           COMMAND ${KILN_CHECK_SUITE} ${part}_override ${KILN_MISUSE_DIR}/secure_suite.allow --
                   env KILN_SECURE=1 KILN_ON_ERROR=report CMOCKA_MESSAGE_OUTPUT=stdout
                       ${CMAKE_CURRENT_BINARY_DIR}/${part}_override)
  set_tests_properties(secure_${part}_override PROPERTIES TIMEOUT 600 LABELS secure)
endforeach()
# Real programs (python3, perl, ...) under the checking mode: same output,
# same exit status, so no report.
foreach(program python3 perl sort gcc git)
  if(EXISTS ${CMAKE_CURRENT_LIST_DIR}/programs/${program}.sh)
    add_test(NAME check_program_${program}
             COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/programs/${program}.sh $<TARGET_FILE:kiln>)
    set_tests_properties(check_program_${program} PROPERTIES TIMEOUT 600 SKIP_RETURN_CODE 77
                         ENVIRONMENT "KILN_CHECK=1" LABELS "check;programs")
  endif()
endforeach()

# --- the hardened mode -------------------------------------------------------------
# The black-box suite must pass unchanged (its defences change no contract),
# and the misuse programs that the hardened mode catches must abort.
set(KILN_SECURE_ENV KILN_SECURE=1 KILN_ON_ERROR=report CMOCKA_MESSAGE_OUTPUT=stdout)
foreach(name ${KILN_CHECK_TESTS})
  add_test(NAME secure_${name}
           COMMAND ${KILN_CHECK_SUITE} ${name} ${KILN_MISUSE_DIR}/secure_suite.allow --
                   env ${KILN_SECURE_ENV} $<TARGET_FILE:${name}>)
  set_tests_properties(secure_${name} PROPERTIES TIMEOUT 600 LABELS secure)
endforeach()
foreach(case small medium huge)
  add_test(NAME secure_double_free_${case}
           COMMAND ${KILN_MISUSE_RUN} abort ${KILN_MISUSE_DIR}/secure.c double_free_${case} --
                   env KILN_SECURE=1 $<TARGET_FILE:misuse_double_free_linked> ${case})
  set_tests_properties(secure_double_free_${case} PROPERTIES TIMEOUT 60 LABELS "secure;misuse")
endforeach()
foreach(case stack static interior foreign)
  add_test(NAME secure_invalid_free_${case}
           COMMAND ${KILN_MISUSE_RUN} abort ${KILN_MISUSE_DIR}/secure.c invalid_free_${case} --
                   env KILN_SECURE=1 $<TARGET_FILE:misuse_invalid_free_linked> ${case})
  set_tests_properties(secure_invalid_free_${case} PROPERTIES TIMEOUT 60 LABELS "secure;misuse")
endforeach()
add_executable(misuse_secure ${KILN_MISUSE_DIR}/secure.c)
target_compile_options(misuse_secure PRIVATE -O0 -g -fno-builtin -Wall)
target_link_libraries(misuse_secure PRIVATE kiln_static Threads::Threads)
foreach(case guard_huge guard_huge_front guard_huge_realloc guard_huge_reuse guard_huge_headroom guard_segment guard_segment_front
             segment_kinds shuffle zero_on_free live_link)
  add_test(NAME secure_${case} COMMAND env KILN_SECURE=1 $<TARGET_FILE:misuse_secure> ${case})
  set_tests_properties(secure_${case} PROPERTIES TIMEOUT 60 LABELS secure)
endforeach()
add_test(NAME secure_forged_link
         COMMAND ${KILN_MISUSE_RUN} abort ${KILN_MISUSE_DIR}/secure.c forged_link --
                 env KILN_SECURE=1 $<TARGET_FILE:misuse_secure> forged_link)
set_tests_properties(secure_forged_link PROPERTIES TIMEOUT 60 LABELS "secure;misuse")
add_test(NAME secure_forged_link_collect
         COMMAND ${KILN_MISUSE_RUN} abort ${KILN_MISUSE_DIR}/secure.c forged_link_collect --
                 env KILN_SECURE=1 $<TARGET_FILE:misuse_secure> forged_link_collect)
set_tests_properties(secure_forged_link_collect PROPERTIES TIMEOUT 60 LABELS "secure;misuse")
foreach(case double_free_delayed double_free_delayed_remote)
  add_test(NAME secure_${case}
           COMMAND ${KILN_MISUSE_RUN} abort ${KILN_MISUSE_DIR}/secure.c ${case} --
                   env KILN_SECURE=1 $<TARGET_FILE:misuse_secure> ${case})
  set_tests_properties(secure_${case} PROPERTIES TIMEOUT 60 LABELS "secure;misuse")
endforeach()
add_test(NAME secure_forged_link_delayed
         COMMAND ${KILN_MISUSE_RUN} abort ${KILN_MISUSE_DIR}/secure.c forged_link_delayed --
                 env KILN_SECURE=1 $<TARGET_FILE:misuse_secure> forged_link_delayed)
set_tests_properties(secure_forged_link_delayed PROPERTIES TIMEOUT 60 LABELS "secure;misuse")
add_test(NAME secure_zero_bound COMMAND env KILN_SECURE=1 KILN_SECURE_ZERO=16 $<TARGET_FILE:misuse_secure> zero_bound)
add_test(NAME secure_zero_off COMMAND env KILN_SECURE=1 KILN_SECURE_ZERO=0 $<TARGET_FILE:misuse_secure> zero_off)
# A bound past the most (32) is the most: the default's test passes.
add_test(NAME secure_zero_clamp COMMAND env KILN_SECURE=1 KILN_SECURE_ZERO=64 $<TARGET_FILE:misuse_secure> zero_on_free)
set_tests_properties(secure_zero_bound secure_zero_off secure_zero_clamp PROPERTIES TIMEOUT 60 LABELS secure)

# --- valgrind ------------------------------------------------------------------------
find_program(KILN_VALGRIND_EXE valgrind)
if(KILN_VALGRIND AND KILN_VALGRIND_EXE)
  add_executable(misuse_valgrind ${KILN_MISUSE_DIR}/valgrind.c)
  target_compile_options(misuse_valgrind PRIVATE -O0 -g -fno-builtin -Wall -Wno-use-after-free)
  target_link_libraries(misuse_valgrind PRIVATE kiln_static Threads::Threads)
  add_test(NAME valgrind_memcheck
           COMMAND bash ${KILN_MISUSE_DIR}/valgrind.sh ${KILN_VALGRIND_EXE} $<TARGET_FILE:misuse_valgrind>)
  set_tests_properties(valgrind_memcheck PROPERTIES TIMEOUT 300 LABELS "misuse;valgrind")
endif()
