# spec.cmake — the executable specification, its long-run driver and the
# fuzz-regression replay (docs/CORRECTNESS.md has the map).
#
#   test_spec          (ctest; built from tests/test_spec.c by CMakeLists.txt)
#                      + the model: bounded random sequences, regressions,
#                      and the broken-allocator checks.  < 60 s.
#   spec_long          long runs: spec_long --minutes 10 (not a ctest test).
#   spec_fuzz_replay   (ctest) every file of fuzz/regressions/ and fuzz/corpus/
#                      through the fuzz target, once.  With clang the target
#                      is the libFuzzer binary (fuzz_api -runs=0 dirs...);
#                      with another compiler a plain main() feeds the files.
#                      scripts/fuzz.sh builds the ASan+UBSan fuzzer itself.
set(KILN_SPEC_DIR ${CMAKE_CURRENT_LIST_DIR}/spec)
set(KILN_SPEC_MODEL ${KILN_SPEC_DIR}/model.c ${KILN_SPEC_DIR}/model_ops.c ${KILN_SPEC_DIR}/model_gen.c)
set(KILN_SPEC_SOURCES ${KILN_SPEC_MODEL} ${KILN_SPEC_DIR}/broken.c)

if(TARGET test_spec)
  target_sources(test_spec PRIVATE ${KILN_SPEC_SOURCES})
  # Children are forked per sequence; the budget inside is ~45 s.  Labels:
  # keep "cmocka" (asan and valgrind stages of scripts/test.sh) and add
  # "threads" (the tsan stage: the model's worker threads free across
  # threads) and "spec" (ctest -L spec).
  set_property(TEST test_spec APPEND PROPERTY LABELS threads spec)
  set_tests_properties(test_spec PROPERTIES TIMEOUT 240)
endif()

add_executable(spec_long ${KILN_SPEC_DIR}/spec_long.c ${KILN_SPEC_SOURCES})
target_include_directories(spec_long PRIVATE ${KILN_SPEC_DIR})
target_link_libraries(spec_long PRIVATE kiln_static Threads::Threads)
target_compile_options(spec_long PRIVATE -Wall -Wextra -fno-builtin)

set(KILN_FUZZ_DIR ${PROJECT_SOURCE_DIR}/fuzz)
if(EXISTS ${KILN_FUZZ_DIR}/fuzz_api.c)
  if(CMAKE_C_COMPILER_ID MATCHES "Clang")
    add_executable(fuzz_api ${KILN_FUZZ_DIR}/fuzz_api.c ${KILN_SPEC_MODEL})
    target_compile_options(fuzz_api PRIVATE -fsanitize=fuzzer -fno-builtin)
    target_link_options(fuzz_api PRIVATE -fsanitize=fuzzer)
    set(KILN_FUZZ_REPLAY_CMD fuzz_api -runs=0)
  else()
    add_executable(fuzz_api ${KILN_FUZZ_DIR}/fuzz_api.c ${KILN_FUZZ_DIR}/replay_main.c ${KILN_SPEC_MODEL})
    target_compile_options(fuzz_api PRIVATE -fno-builtin)
    set(KILN_FUZZ_REPLAY_CMD fuzz_api)
  endif()
  target_include_directories(fuzz_api PRIVATE ${KILN_SPEC_DIR})
  target_link_libraries(fuzz_api PRIVATE kiln_static Threads::Threads)
  add_test(NAME spec_fuzz_replay
           COMMAND ${KILN_FUZZ_REPLAY_CMD} ${KILN_FUZZ_DIR}/regressions ${KILN_FUZZ_DIR}/corpus)
  set_tests_properties(spec_fuzz_replay PROPERTIES TIMEOUT 120 LABELS spec)
endif()
