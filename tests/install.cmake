# cmake --install, then find_package(kiln) and pkg-config from a consumer.
if(NOT KILN_SANITIZE)
  add_test(NAME install_consumer COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/install/check.sh ${PROJECT_BINARY_DIR})
  set_tests_properties(install_consumer PROPERTIES TIMEOUT 120 LABELS install)
endif()
