# vdpu_library(name SOURCES ... DEPS ...): one static library per layer/plugin.
function(vdpu_library name)
  cmake_parse_arguments(A "" "" "SOURCES;DEPS" ${ARGN})
  add_library(${name} STATIC ${A_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${A_DEPS})
endfunction()

# vdpu_plugin(name APPS snap [virtnet] SOURCES ... DEPS ...): a self-registering
# plugin (bdev module, RPC glue). An OBJECT library, so that its static
# registration objects are linked whole into the apps named (the daemons link
# every target of the global property VDPU_PLUGINS_<app>).
function(vdpu_plugin name)
  cmake_parse_arguments(A "" "" "APPS;SOURCES;DEPS" ${ARGN})
  add_library(${name} OBJECT ${A_SOURCES})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(${name} PUBLIC ${A_DEPS})
  if(NOT A_APPS)
    set(A_APPS snap)
  endif()
  foreach(app ${A_APPS})
    set_property(GLOBAL APPEND PROPERTY VDPU_PLUGINS_${app} ${name})
  endforeach()
endfunction()

# vdpu_test(name SOURCES ... DEPS ...): a GoogleTest binary registered with CTest.
function(vdpu_test name)
  cmake_parse_arguments(A "" "TIMEOUT" "SOURCES;DEPS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_DEPS} GTest::gtest GTest::gtest_main GTest::gmock)
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60 PROPERTIES TIMEOUT 120)
endfunction()
include(GoogleTest)

# Adds every child folder that has a CMakeLists.txt, so that a new module is a
# new folder and nothing else.
macro(vdpu_add_subdirs)
  file(GLOB _children LIST_DIRECTORIES true RELATIVE ${CMAKE_CURRENT_SOURCE_DIR} ${CMAKE_CURRENT_SOURCE_DIR}/*)
  list(SORT _children)
  foreach(_c ${_children})
    if(IS_DIRECTORY ${CMAKE_CURRENT_SOURCE_DIR}/${_c} AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${_c}/CMakeLists.txt)
      add_subdirectory(${_c})
    endif()
  endforeach()
endmacro()
