# DPDK testpmd (net_virtio_user) against `vdpu-perf net-target`: included by
# tests/CMakeLists.txt (the lead adds `include(${CMAKE_CURRENT_SOURCE_DIR}/integration/net.cmake)`).
# Needs root, 2 CPUs, hugepages (reserved by the test) and Debian's dpdk
# package; exits 77 (skipped) when one is missing.
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND AND TARGET vdpu-perf)
  add_test(NAME integration_net_testpmd
           COMMAND ${Python3_EXECUTABLE} ${CMAKE_CURRENT_LIST_DIR}/test_net_testpmd.py
                   --perf $<TARGET_FILE:vdpu-perf>)
  set_tests_properties(integration_net_testpmd PROPERTIES
    TIMEOUT 300 SKIP_RETURN_CODE 77 RUN_SERIAL TRUE LABELS "integration;net")
endif()
