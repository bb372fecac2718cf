// Checks shared by the data set harnesses (fuzz_idx, fuzz_cifar): what a reader returns
// must be a consistent Dataset, and what the CLI does with it next (the stratified split
// and the normalization statistics) must work on it.
#pragma once

#include <string>

#include "runtime/data/dataset.h"

namespace nas_fuzz {

void check_dataset(const nas::Dataset& data, const std::string& reader);

}  // namespace nas_fuzz
