// A backend plugin as another build of nasc would leave it (runtime/exec/backend_plugin.h):
// its entry point answers with another interface digest, which the loader must refuse
// with a message rather than use its classes (test_cli.cpp).
#include <cstddef>

#include "runtime/exec/backend_plugin.h"

namespace {

int probe(char* message, size_t size) {
  if (size > 0) message[0] = 0;
  return 1;
}

nas::Backend* create(char* message, size_t size) {
  if (size > 0) message[0] = 0;
  return nullptr;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const NascBackendPlugin* nasc_backend_plugin() {
  static const NascBackendPlugin table{"0.0.0-another-build", &probe, &create};
  return &table;
}
