# vdpu's NVMe/TCP initiator against vdpu's NVMe/TCP target (two vdpu-snap
# daemons over loopback), tests/integration/test_nvme_tcp.py. Exits 77
# (skipped) when the build has no NVMe/TCP target.
find_package(Python3 COMPONENTS Interpreter REQUIRED)
add_test(NAME integration_nvme_tcp
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_nvme_tcp.py -v)
set_tests_properties(integration_nvme_tcp PROPERTIES
  ENVIRONMENT "VDPU_BIN_DIR=${CMAKE_BINARY_DIR}/bin"
  TIMEOUT 300 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE
  LABELS integration)
