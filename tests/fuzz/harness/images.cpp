// fuzz_images: PNG and JPEG decoding (decode_image, libpng and libjpeg-turbo behind it)
// and the image-folder data set (read_image_folder, --data images:DIR). The input is one
// image file; decoded, it must have the size it claims, and a folder of two classes
// holding it must read as a data set of its size (as gray and as RGB).
#include <filesystem>
#include <optional>

#include "runtime/data/image_decode.h"
#include "runtime/data/user_data.h"
#include "tests/fuzz/harness/dataset_checks.h"
#include "tests/fuzz/harness/harness.h"

namespace nas_fuzz {

bool fuzz_images(const std::string& input) {
  std::optional<nas::DecodedImage> img;
  if (!accepted([&] { img = nas::decode_image(input, "input"); })) return false;
  if (img->channels != 1 && img->channels != 3) bug("decode_image", "neither 1 nor 3 channels");
  if (img->height < 1 || img->width < 1) bug("decode_image", "an empty image");
  if (img->pixels.size() != static_cast<size_t>(img->height * img->width * img->channels))
    bug("decode_image", "pixel bytes do not match the size");

  const std::string dir = scratch_dir() + "/images";
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  write_scratch("images/a/one.png", input);
  write_scratch("images/b/two.jpg", input);
  for (int64_t c : {1, 3}) {
    std::optional<nas::UserData> u;
    if (!accepted([&] { u = nas::read_image_folder(dir, {c, img->height, img->width}); })) {
      if (c == 3 || img->channels == 1) bug("read_image_folder", "refused a decodable image");
      continue;
    }
    if (u->train.size() != 2 || u->train.num_classes != 2)
      bug("read_image_folder", "not two images of two classes");
    check_dataset(u->train, "read_image_folder");
  }
  return true;
}

}  // namespace nas_fuzz
