# Integration test of the virtio-net controller: vdpu-virtnet driven by the
# virtnet CLI (tests/integration/test_virtnet.py). include()d from
# tests/CMakeLists.txt by the lead. Needs root (TAP); DPDK testpmd optional.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET vdpu-virtnet AND TARGET virtnet)
  add_test(NAME integration_virtnet
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_virtnet.py)
  set_tests_properties(integration_virtnet PROPERTIES
    ENVIRONMENT "VDPU_BIN_DIR=${CMAKE_BINARY_DIR}/bin"
    TIMEOUT 300 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE LABELS "integration;net")
endif()
