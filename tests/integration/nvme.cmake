# Integration test of the NVMe manager through vdpu-snap, the real CLI and
# `vdpu-perf nvme` (tests/integration/test_nvme.py).
# include()d from tests/integration/CMakeLists.txt.
find_package(Python3 COMPONENTS Interpreter REQUIRED)
add_test(NAME integration_nvme
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_nvme.py -v)
set_tests_properties(integration_nvme PROPERTIES
  ENVIRONMENT "VDPU_BIN_DIR=${CMAKE_BINARY_DIR}/bin"
  TIMEOUT 300
  LABELS integration)
