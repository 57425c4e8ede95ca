# programs.cmake — tests that need more than one cmocka program each:
#
#   test_api_override, test_api_memory_override
#                       tests/test_api.c and test_api_memory.c again, linked
#                       against libkiln.so (not the static library) with
#                       KILN_TEST_OVERRIDE: the whole API contract through the
#                       shared library, plus the checks that malloc, free, ...,
#                       the __libc_* names and libc's own allocations (strdup,
#                       stdio) reach Kiln.
#   program_<name>      a real program run plain, with LD_PRELOAD of
#                       libkiln.so, and with KILN_SHOW_STATS=1: same output,
#                       and statistics proving Kiln served it
#                       (tests/programs/<name>.sh; exit 77 = not installed).
#
# Both need the exported malloc family, so they exist only with KILN_OVERRIDE
# (the sanitizer builds turn it off).
if(NOT KILN_OVERRIDE OR NOT TARGET kiln)
  return()
endif()

set(KILN_OVERRIDE_TESTS test_api test_api_memory)
foreach(part ${KILN_OVERRIDE_TESTS})
  add_executable(${part}_override ${CMAKE_CURRENT_LIST_DIR}/${part}.c)
  target_compile_definitions(${part}_override PRIVATE KILN_TEST_OVERRIDE=1)
  target_include_directories(${part}_override PRIVATE ${CMOCKA_INCLUDE_DIR} ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(${part}_override PRIVATE kiln ${CMOCKA_LIBRARY} Threads::Threads)
  target_compile_options(${part}_override PRIVATE -Wall -Wextra -fno-builtin)
  add_test(NAME ${part}_override COMMAND ${part}_override)
  set_tests_properties(${part}_override PROPERTIES TIMEOUT 300 ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=stdout")
endforeach()

foreach(program python3 perl sort gcc git)
  add_test(NAME program_${program}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/programs/${program}.sh $<TARGET_FILE:kiln>)
  set_tests_properties(program_${program} PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77 LABELS programs)
endforeach()
