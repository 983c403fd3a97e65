# Integration test of the VBLK manager through vdpu-snap (tests/integration/test_vblk.py).
# include()d from tests/integration/CMakeLists.txt.
find_package(Python3 COMPONENTS Interpreter REQUIRED)
add_test(NAME integration_vblk
         COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_vblk.py -v)
set_tests_properties(integration_vblk PROPERTIES
  ENVIRONMENT "VDPU_BIN_DIR=${CMAKE_BINARY_DIR}/bin"
  TIMEOUT 300
  LABELS integration)
