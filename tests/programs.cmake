# programs.cmake — tests that need more than one cmocka program each:
#
#   test_api_override   tests/test_api.c again, linked against libkiln.so
#                       (not the static library) with KILN_TEST_OVERRIDE: the
#                       whole API contract through the shared library, plus
#                       the checks that malloc, free, ..., the __libc_* names
#                       and libc's own allocations (strdup, stdio) reach Kiln.
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

add_executable(test_api_override ${CMAKE_CURRENT_LIST_DIR}/test_api.c)
target_compile_definitions(test_api_override PRIVATE KILN_TEST_OVERRIDE=1)
target_include_directories(test_api_override PRIVATE ${CMOCKA_INCLUDE_DIR})
target_link_libraries(test_api_override PRIVATE kiln ${CMOCKA_LIBRARY} Threads::Threads)
target_compile_options(test_api_override PRIVATE -Wall -Wextra -fno-builtin)
add_test(NAME test_api_override COMMAND test_api_override)
set_tests_properties(test_api_override PROPERTIES TIMEOUT 300 ENVIRONMENT "CMOCKA_MESSAGE_OUTPUT=stdout")

foreach(program python3 perl sort gcc git)
  add_test(NAME program_${program}
           COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/programs/${program}.sh $<TARGET_FILE:kiln>)
  set_tests_properties(program_${program} PROPERTIES TIMEOUT 120 SKIP_RETURN_CODE 77 LABELS programs)
endforeach()
