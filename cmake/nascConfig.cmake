# find_package(nasc) for an installed nasc: nasc::nasc (the shared libnasc, which carries
# its internals) and nasc::nasc_static (which needs nasc's own dependencies at link time:
# they are looked up here, quietly, since only the static library uses them).
include(CMakeFindDependencyMacro)
foreach(dep fmt nlohmann_json ZLIB Threads OpenMP)
  find_package(${dep} QUIET)
endforeach()
find_package(dnnl CONFIG QUIET)
find_package(antlr4-runtime QUIET)
find_package(LLVM 14 CONFIG QUIET PATHS /usr/lib/llvm-14/lib/cmake/llvm NO_DEFAULT_PATH)
include("${CMAKE_CURRENT_LIST_DIR}/nascTargets.cmake")
