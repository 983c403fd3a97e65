# Integration test of the NVMe-oF/TCP target through vdpu-snap with a raw
# NVMe/TCP host in Python (tests/integration/test_nvmf_tcp.py).
# include()d from tests/integration/CMakeLists.txt.
find_package(Python3 COMPONENTS Interpreter REQUIRED)
add_test(NAME integration_nvmf_tcp
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_nvmf_tcp.py -v)
set_tests_properties(integration_nvmf_tcp PROPERTIES
  ENVIRONMENT "VDPU_BIN_DIR=${CMAKE_BINARY_DIR}/bin"
  TIMEOUT 300
  LABELS integration)
