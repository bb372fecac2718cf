#include "runtime/data/image_decode.h"

// jpeglib.h needs FILE and size_t declared first.
#include <fmt/format.h>
#include <jpeglib.h>
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>

namespace nas {

namespace {

// Far beyond any training image (8192 x 8192), so that a header claiming billions of
// pixels is refused before its buffer is allocated.
constexpr uint64_t kMaxPixels = uint64_t{1} << 26;

void check_size(const std::string& path, uint64_t height, uint64_t width) {
  if (height == 0 || width == 0)
    throw DataError(path, fmt::format("the image is {}x{}: empty", height, width));
  if (height * width > kMaxPixels)
    throw DataError(
        path, fmt::format("the image is {}x{}, over the limit of 2^26 pixels", height, width));
}

// libpng's low-level reader, not its simplified API: that one treats 16-bit files as
// linear light and gamma-encodes them to 8 bits (0x1234 became 76, not 18) and applies a
// file's gAMA chunk, so the pixels would differ from what PIL or torchvision read. Here
// the stored values are kept: palettes expanded, gray below 8 bits scaled up, 16-bit
// samples reduced to their high byte, an alpha channel (or tRNS) dropped, as PIL's
// convert("RGB") does. Errors jump back to decode_png_into's setjmp, like libjpeg's.
struct PngState {
  const std::string* bytes;
  size_t pos;
  std::jmp_buf jump;
  char message[256];
};

void png_read_from_memory(png_structp png, png_bytep out, png_size_t n) {
  auto* s = static_cast<PngState*>(png_get_io_ptr(png));
  if (n > s->bytes->size() - s->pos) png_error(png, "the file ends early");
  std::memcpy(out, s->bytes->data() + s->pos, n);
  s->pos += n;
}

void png_error_jump(png_structp png, png_const_charp message) {
  auto* s = static_cast<PngState*>(png_get_error_ptr(png));
  std::snprintf(s->message, sizeof s->message, "%s", message);
  std::longjmp(s->jump, 1);
}

void png_warning_quiet(png_structp, png_const_charp) {}  // e.g. an odd colour profile

// Between setjmp and the longjmp nothing here has a destructor to skip; `out` is the
// caller's. Returns false with s->message set, or with *too_large.
bool decode_png_into(PngState* s, DecodedImage* out, bool* too_large) {
  png_structp png =
      png_create_read_struct(PNG_LIBPNG_VER_STRING, s, png_error_jump, png_warning_quiet);
  png_infop info = png ? png_create_info_struct(png) : nullptr;
  if (!png || !info) {
    std::snprintf(s->message, sizeof s->message, "out of memory");
    png_destroy_read_struct(&png, nullptr, nullptr);
    return false;
  }
  if (setjmp(s->jump)) {
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  png_set_read_fn(png, s, png_read_from_memory);
  png_read_info(png, info);
  out->height = png_get_image_height(png, info);
  out->width = png_get_image_width(png, info);
  if (uint64_t(out->height) * uint64_t(out->width) > kMaxPixels) {
    *too_large = true;
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  const int color_type = png_get_color_type(png, info);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if (color_type == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8)
    png_set_expand_gray_1_2_4_to_8(png);
  png_set_strip_16(png);
  png_set_strip_alpha(png);
  const int passes = png_set_interlace_handling(png);
  png_read_update_info(png, info);
  out->channels = png_get_channels(png, info);
  if (out->channels != 1 && out->channels != 3) {  // the transforms above leave 1 or 3
    std::snprintf(s->message, sizeof s->message, "%d channels after decoding", out->channels);
    png_destroy_read_struct(&png, &info, nullptr);
    return false;
  }
  out->pixels.assign(static_cast<size_t>(out->height * out->width * out->channels), 0);
  const size_t stride = static_cast<size_t>(out->width * out->channels);
  for (int pass = 0; pass < passes; ++pass)
    for (int64_t y = 0; y < out->height; ++y)
      png_read_row(png, out->pixels.data() + static_cast<size_t>(y) * stride, nullptr);
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

DecodedImage decode_png(const std::string& bytes, const std::string& path) {
  PngState s{&bytes, 0, {}, {}};
  DecodedImage out;
  bool too_large = false;
  if (decode_png_into(&s, &out, &too_large)) return out;
  if (too_large)
    check_size(path, static_cast<uint64_t>(out.height), static_cast<uint64_t>(out.width));
  throw DataError(path, std::string("corrupt PNG: ") + s.message);
}

// libjpeg reports errors by calling error_exit, which must not return: it jumps back to
// decode_jpeg_into's setjmp with the message saved.
struct JpegErrors {
  jpeg_error_mgr mgr;
  jpeg_progress_mgr progress;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void jpeg_error_exit(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegErrors*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

// A warning is corrupt data that libjpeg would paper over (a truncated file decodes with
// its missing rows gray): for training data that is an error too. Trace messages
// (level > 0) are dropped.
void jpeg_warning_is_error(j_common_ptr cinfo, int level) {
  if (level < 0) jpeg_error_exit(cinfo);
}

// A progressive JPEG of thousands of scans takes minutes to decode; no encoder writes more
// than a few dozen, so more than 500 (libjpeg-turbo's own TJFLAG_LIMITSCANS bound) is an
// error.
void jpeg_limit_scans(j_common_ptr cinfo) {
  auto* d = reinterpret_cast<j_decompress_ptr>(cinfo);
  if (d->is_decompressor && d->input_scan_number > 500) {
    auto* err = reinterpret_cast<JpegErrors*>(cinfo->err);
    std::snprintf(err->message, sizeof err->message, "more than 500 scans");
    std::longjmp(err->jump, 1);
  }
}

// Between setjmp and the longjmp nothing here has a destructor to skip; `out` is the
// caller's. Returns false with err->message set on an error.
bool decode_jpeg_into(const std::string& bytes, JpegErrors* err, DecodedImage* out,
                      bool* too_large) {
  jpeg_decompress_struct cinfo;
  cinfo.err = jpeg_std_error(&err->mgr);
  err->mgr.error_exit = jpeg_error_exit;
  err->mgr.emit_message = jpeg_warning_is_error;
  err->progress.progress_monitor = jpeg_limit_scans;
  if (setjmp(err->jump)) {
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  cinfo.progress = &err->progress;
  jpeg_read_header(&cinfo, TRUE);
  // The size is known from the header: refuse a huge image before decoding starts.
  out->height = cinfo.image_height;
  out->width = cinfo.image_width;
  out->channels = cinfo.num_components;
  if (uint64_t{cinfo.image_height} * cinfo.image_width > kMaxPixels) {
    *too_large = true;
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  const bool gray = cinfo.jpeg_color_space == JCS_GRAYSCALE;
  cinfo.out_color_space = gray ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  out->height = cinfo.output_height;
  out->width = cinfo.output_width;
  out->channels = cinfo.output_components;
  const uint64_t pixels = uint64_t{cinfo.output_height} * cinfo.output_width;
  if (pixels == 0 || pixels > kMaxPixels || (out->channels != 1 && out->channels != 3)) {
    *too_large = true;
    jpeg_destroy_decompress(&cinfo);
    return false;
  }
  out->pixels.assign(static_cast<size_t>(pixels) * static_cast<size_t>(out->channels), 0);
  const size_t stride = static_cast<size_t>(out->width) * static_cast<size_t>(out->channels);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out->pixels.data() + cinfo.output_scanline * stride;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return true;
}

DecodedImage decode_jpeg(const std::string& bytes, const std::string& path) {
  JpegErrors err;
  DecodedImage out;
  bool too_large = false;
  if (decode_jpeg_into(bytes, &err, &out, &too_large)) return out;
  if (too_large) {
    check_size(path, static_cast<uint64_t>(out.height), static_cast<uint64_t>(out.width));
    throw DataError(path,
                    fmt::format("a JPEG of {} channels (nasc reads gray and RGB)", out.channels));
  }
  // libjpeg says which: "Premature end of JPEG file", "Unsupported color conversion request"
  // (CMYK), ...
  throw DataError(path, std::string("corrupt or unsupported JPEG: ") + err.message);
}

}  // namespace

bool looks_like_png(const std::string& bytes) {
  return bytes.size() >= 8 && std::memcmp(bytes.data(), "\x89PNG\r\n\x1a\n", 8) == 0;
}

bool looks_like_jpeg(const std::string& bytes) {
  return bytes.size() >= 3 && std::memcmp(bytes.data(), "\xff\xd8\xff", 3) == 0;
}

DecodedImage decode_image(const std::string& bytes, const std::string& path) {
  if (looks_like_png(bytes)) return decode_png(bytes, path);
  if (looks_like_jpeg(bytes)) return decode_jpeg(bytes, path);
  throw DataError(path, "neither a PNG nor a JPEG file (by its first bytes)", 0);
}

std::string encode_png(const DecodedImage& img) {
  NAS_CHECK(img.channels == 1 || img.channels == 3, "encode_png: 1 or 3 channels");
  png_image image;
  std::memset(&image, 0, sizeof image);
  image.version = PNG_IMAGE_VERSION;
  image.width = static_cast<png_uint_32>(img.width);
  image.height = static_cast<png_uint_32>(img.height);
  image.format = img.channels == 3 ? PNG_FORMAT_RGB : PNG_FORMAT_GRAY;
  png_alloc_size_t size = 0;
  NAS_CHECK(png_image_write_to_memory(&image, nullptr, &size, 0, img.pixels.data(), 0, nullptr),
            std::string("encode_png: ") + image.message);
  std::string out(size, '\0');
  NAS_CHECK(png_image_write_to_memory(&image, out.data(), &size, 0, img.pixels.data(), 0, nullptr),
            std::string("encode_png: ") + image.message);
  out.resize(size);
  return out;
}

std::string encode_jpeg(const DecodedImage& img, int quality) {
  NAS_CHECK(img.channels == 1 || img.channels == 3, "encode_jpeg: 1 or 3 channels");
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);  // the encoder's input is ours: errors are bugs
  jpeg_create_compress(&cinfo);
  unsigned char* buffer = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buffer, &size);
  cinfo.image_width = static_cast<JDIMENSION>(img.width);
  cinfo.image_height = static_cast<JDIMENSION>(img.height);
  cinfo.input_components = img.channels;
  cinfo.in_color_space = img.channels == 3 ? JCS_RGB : JCS_GRAYSCALE;
  jpeg_set_defaults(&cinfo);
  jpeg_set_quality(&cinfo, quality, TRUE);
  jpeg_start_compress(&cinfo, TRUE);
  const size_t stride = static_cast<size_t>(img.width) * static_cast<size_t>(img.channels);
  while (cinfo.next_scanline < cinfo.image_height) {
    JSAMPROW row = const_cast<unsigned char*>(img.pixels.data() + cinfo.next_scanline * stride);
    jpeg_write_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::string out(reinterpret_cast<char*>(buffer), size);
  jpeg_destroy_compress(&cinfo);
  std::free(buffer);
  return out;
}

}  // namespace nas
