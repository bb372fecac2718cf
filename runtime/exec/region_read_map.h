// Where an elementwise region reads each of its inputs from, for regions with a crop in them
// (compiler/passes/fusion.h). A region runs over the elements of its output, element i
// reading element i of each input, except:
//   - the inputs a Crop reads, directly or through the operations before it (its subtree):
//     those operations run at the crop's window, so element (plane, h, w) of the output
//     reads (plane, h + top, w + left) of the larger input;
//   - the input a CropGrad reads (the smaller gradient): element (plane, h, w) reads
//     (plane, h - top, w - left) of it where that lies inside it, and 0 elsewhere.
// `plane` counts the batch times the channels. Every executor of regions (the CPU's blocks,
// the JIT's loops, the CUDA kernels) reads through these maps.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/exec/exec_plan.h"
#include "support/errors.h"

namespace nas {

struct RegionReadMap {
  bool mapped = false;                    // false: element i reads element i
  bool bounded = false;                   // CropGrad: reads outside the input are 0
  int64_t height = 1, width = 1;          // the region's output image
  int64_t src_height = 1, src_width = 1;  // the input's image
  int64_t dh = 0, dw = 0;                 // input row = output row + dh, column + dw

  // The input element output element `i` reads, and whether it lies inside the input.
  int64_t source(int64_t i, bool* inside) const {
    const int64_t w = i % width, h = (i / width) % height, plane = i / (width * height);
    const int64_t sh = h + dh, sw = w + dw;
    *inside = !bounded || (sh >= 0 && sh < src_height && sw >= 0 && sw < src_width);
    return *inside ? (plane * src_height + sh) * src_width + sw : 0;
  }
  // Text that tells maps apart (the generated code's signatures).
  std::string key() const {
    if (!mapped) return "direct";
    return std::to_string(bounded) + " " + std::to_string(height) + "x" + std::to_string(width) +
           " from " + std::to_string(src_height) + "x" + std::to_string(src_width) + " " +
           std::to_string(dh) + "," + std::to_string(dw);
  }
};

// Per input of region step `s`: how its elements are read (above). An input read both
// through a map and directly, or through two maps, is an InternalError (the fusion pass
// never forms such a region).
inline std::vector<RegionReadMap> region_read_maps(const Step& s) {
  std::vector<RegionReadMap> maps(s.inputs.size());
  std::vector<char> assigned(s.inputs.size(), 0);
  const std::vector<int64_t>& out = s.output_shape;  // [batch, C, H, W] when a crop is in
  auto image = [&](const std::vector<int64_t>& shape, int64_t* h, int64_t* w) {
    NAS_CHECK(shape.size() == 4, "region `" + s.name + "`: a crop of a value that is no image");
    *h = shape[2];
    *w = shape[3];
  };
  auto assign = [&](int k, const RegionReadMap& map) {
    const bool same = assigned[k] && maps[k].key() == map.key();
    NAS_CHECK(!assigned[k] || same,
              "region `" + s.name + "`: input " + std::to_string(k) + " is read through two maps");
    maps[k] = map;
    assigned[k] = 1;
  };
  // crop_of[j]: the Crop that operation j feeds, directly or through the operations after
  // it (j then runs at that crop's window), or -1.
  const size_t n = s.region.size();
  std::vector<int> crop_of(n, -1);
  for (size_t i = n; i-- > 0;) {
    const RegionOp& op = s.region[i];
    const int crop = op.kind == StepKind::Crop ? static_cast<int>(i) : crop_of[i];
    if (crop < 0) continue;
    for (int k : op.operands)
      if (k < 0) crop_of[static_cast<size_t>(-k - 1)] = crop;
  }
  std::vector<char> mapped(s.inputs.size(), 0);
  for (size_t i = 0; i < n; ++i) {
    const RegionOp& op = s.region[i];
    const bool at_window = op.kind == StepKind::Crop || crop_of[i] >= 0;
    if (!at_window && op.kind != StepKind::CropGrad) continue;
    const RegionOp& window =
        op.kind == StepKind::CropGrad ? op : s.region[crop_of[i] >= 0 ? crop_of[i] : i];
    RegionReadMap map;
    map.mapped = true;
    map.bounded = window.kind == StepKind::CropGrad;
    image(out, &map.height, &map.width);
    map.dh = map.bounded ? -window.top : window.top;
    map.dw = map.bounded ? -window.left : window.left;
    NAS_CHECK(!map.bounded || op.operands.at(0) >= 0,
              "region `" + s.name + "`: a crop_grad of a value computed in the region");
    for (int k : op.operands) {
      if (k < 0) continue;
      image(s.input_shapes.at(k), &map.src_height, &map.src_width);
      const bool identity =
          map.dh == 0 && map.dw == 0 && map.src_height == map.height && map.src_width == map.width;
      if (identity) continue;  // a crop of nothing: read in place
      assign(k, map);
      mapped[k] = 1;
    }
  }
  // The other operations read their inputs element for element.
  for (size_t i = 0; i < n; ++i) {
    const RegionOp& op = s.region[i];
    if (is_crop_op(op) || crop_of[i] >= 0) continue;
    for (int k : op.operands)
      NAS_CHECK(k < 0 || !mapped[k], "region `" + s.name + "`: input " + std::to_string(k) +
                                         " is read through a crop's map and directly");
  }
  return maps;
}

}  // namespace nas
