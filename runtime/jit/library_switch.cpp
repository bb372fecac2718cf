#include "runtime/jit/library_switch.h"

#include <cstdlib>
#include <iostream>
#include <string>

namespace nas {

bool generated_unless_library(const char* name, const char* what) {
  const char* text = std::getenv(name);
  const std::string value = text ? text : "generated";
  if (value != "generated" && value != "library")
    std::cerr << "nasc: warning: " << name << " must be `generated` or `library`, got `" << value
              << "`; " << what << " runs generated code\n";
  return value != "library";
}

}  // namespace nas
