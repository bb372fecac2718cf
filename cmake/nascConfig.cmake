# find_package(nasc) for an installed nasc: nasc::nasc (the shared libnasc, which carries
# its internals) and nasc::nasc_static (which needs nasc's own dependencies at link time:
# they are looked up here, quietly, since only the static library uses them).
include(CMakeFindDependencyMacro)
foreach(dep fmt nlohmann_json ZLIB PNG JPEG Threads OpenMP)
  find_package(${dep} QUIET)
endforeach()
find_package(dnnl CONFIG QUIET)
find_package(MPI QUIET COMPONENTS C)  # data parallelism (runtime/dist)
find_package(antlr4-runtime QUIET)
# The ONNX export: Debian's libonnx-dev, whose package needs protobuf's target first.
find_package(Protobuf QUIET)
find_package(ONNX CONFIG QUIET)
# The JIT links LLVM 14's one shared library (target `LLVM` in nasc's build). LLVM's own
# CMake package needs a C compiler and more than a consumer has; the library is all the
# static nasc needs, so it is imported here under that name.
if(NOT TARGET LLVM)
  find_library(NASC_LLVM_LIBRARY NAMES LLVM-14 PATHS /usr/lib/llvm-14/lib NO_DEFAULT_PATH)
  if(NASC_LLVM_LIBRARY)
    add_library(LLVM SHARED IMPORTED)
    set_target_properties(LLVM PROPERTIES IMPORTED_LOCATION "${NASC_LLVM_LIBRARY}")
  endif()
endif()
include("${CMAKE_CURRENT_LIST_DIR}/nascTargets.cmake")
