// The process-wide oneDNN CPU engine and stream shared by every CPU kernel. One engine keeps
// oneDNN's own kernel cache and thread pool shared; creating engines per kernel would not.
#pragma once

#include <oneapi/dnnl/dnnl.hpp>

namespace nas {

// Created on first use (thread-safe static initialisation), never destroyed before exit.
dnnl::engine& cpu_engine();

// The stream kernels execute on. CPU streams run primitives synchronously, so the outputs
// are ready when a kernel call returns. Callers execute from one thread at a time (the
// executor is single-threaded; oneDNN parallelises inside each primitive).
dnnl::stream& cpu_stream();

}  // namespace nas
