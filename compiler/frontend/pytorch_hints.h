// Hints for people who write .nas the way they write PyTorch: torch.nn keyword names
// (`kernel_size=`, `padding=`), Python's `True`/`False`/`None`, and `k // 2`, which is a
// comment here. The messages that report those mistakes append these hints; the edit
// distance suggestions (support/did_you_mean.h) cannot find them, the names being too far apart.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace nas {

// For an unknown keyword argument `name` given to an op or module whose parameters are
// `known`: "; did you mean `kernel`? (`kernel_size` is PyTorch's name for it)" when
// `name` is a PyTorch keyword whose .nas counterpart is in `known`; a sentence saying
// what to do instead when it has no counterpart (`in_channels`, `inplace`); else "".
std::string pytorch_keyword_hint(std::string_view name, const std::vector<std::string>& known);

// "; did you mean `true`?" for `True`, the same for `False`, and a note that there is no
// null value for `None`; "" for any other name.
std::string python_literal_hint(std::string_view name);

// The note for `a // b`: `//` starts a comment, and floor division is `/` on two ints.
// `left` and `right` are the operands around the `//` when they are simple names or
// numbers (they make the example), else empty.
std::string floor_division_note(std::string_view left, std::string_view right);

}  // namespace nas
