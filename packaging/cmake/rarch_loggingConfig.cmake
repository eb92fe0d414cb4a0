# CMake package of rarch-logging (installed by `make install` into <libdir>/cmake/rarch_logging).
#
#   find_package(rarch_logging 0.1 REQUIRED)
#   target_link_libraries(app PRIVATE rarch_logging::rarch_logging)         # shared library
#   target_link_libraries(app PRIVATE rarch_logging::rarch_logging_static)  # static archive
#   target_link_libraries(app PRIVATE rarch_logging::cxx)  # shared + C++17 for rarch_logging.hpp
#
# Sets rarch_logging_VERSION and rarch_logging_INCLUDE_DIR. The package is relocatable: paths
# are found from this file's location (falling back to the directories given at install).

get_filename_component(_rarch_libdir "${CMAKE_CURRENT_LIST_DIR}/../.." ABSOLUTE)
# The include directory, relative to this file when the package was installed under one prefix
# (a tarball unpacked anywhere, a .deb unpacked into a root), else the absolute one.
get_filename_component(_rarch_incdir "@CMAKE_INCDIR@" ABSOLUTE)
if(NOT EXISTS "${_rarch_incdir}/rarch_logging.h")
  set(_rarch_incdir "@INCDIR@")
endif()
if(NOT EXISTS "${_rarch_incdir}/rarch_logging.h")
  set(${CMAKE_FIND_PACKAGE_NAME}_FOUND FALSE)
  set(${CMAKE_FIND_PACKAGE_NAME}_NOT_FOUND_MESSAGE
      "rarch_logging.h not found (looked in @CMAKE_INCDIR@ and @INCDIR@)")
  return()
endif()
set(rarch_logging_INCLUDE_DIR "${_rarch_incdir}")

if(NOT TARGET rarch_logging::rarch_logging)
  if(NOT EXISTS "${_rarch_libdir}/librarch_logging.so.@VERSION@")
    set(${CMAKE_FIND_PACKAGE_NAME}_FOUND FALSE)
    set(${CMAKE_FIND_PACKAGE_NAME}_NOT_FOUND_MESSAGE
        "${_rarch_libdir}/librarch_logging.so.@VERSION@ not found")
    return()
  endif()
  add_library(rarch_logging::rarch_logging SHARED IMPORTED)
  set_target_properties(rarch_logging::rarch_logging PROPERTIES
    IMPORTED_LOCATION "${_rarch_libdir}/librarch_logging.so.@VERSION@"
    IMPORTED_SONAME "librarch_logging.so.@MAJOR@"
    INTERFACE_INCLUDE_DIRECTORIES "${_rarch_incdir}")
endif()

if(NOT TARGET rarch_logging::rarch_logging_static AND EXISTS "${_rarch_libdir}/librarch_logging.a")
  # The system libraries of the Rust standard library (rustc --print native-static-libs).
  include(CMakeFindDependencyMacro)
  set(THREADS_PREFER_PTHREAD_FLAG ON)
  find_dependency(Threads)
  add_library(rarch_logging::rarch_logging_static STATIC IMPORTED)
  set_target_properties(rarch_logging::rarch_logging_static PROPERTIES
    IMPORTED_LOCATION "${_rarch_libdir}/librarch_logging.a"
    IMPORTED_LINK_INTERFACE_LANGUAGES "C"
    INTERFACE_INCLUDE_DIRECTORIES "${_rarch_incdir}"
    INTERFACE_LINK_LIBRARIES "gcc_s;util;rt;Threads::Threads;m;${CMAKE_DL_LIBS};c")
endif()

if(NOT TARGET rarch_logging::cxx)
  add_library(rarch_logging::cxx INTERFACE IMPORTED)
  set_target_properties(rarch_logging::cxx PROPERTIES
    INTERFACE_LINK_LIBRARIES "rarch_logging::rarch_logging"
    INTERFACE_COMPILE_FEATURES "cxx_std_17")
endif()

set(rarch_logging_VERSION "@VERSION@")
unset(_rarch_libdir)
unset(_rarch_incdir)
