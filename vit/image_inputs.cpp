// Input expansion for the CLI: files, folders (recursive, symlink-loop safe), globs.
#include "vit/image_inputs.h"

#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <set>

#include "common/error.h"

namespace moh::vit {
namespace fs = std::filesystem;

bool has_image_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (auto& ch : ext) ch = (char)std::tolower((unsigned char)ch);
  static const char* kExt[] = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"};
  return std::any_of(std::begin(kExt), std::end(kExt), [&](const char* e) { return ext == e; });
}

namespace {

// A recursive walk that survives what real folders hold: symlink loops (each real folder is entered once),
// sub-folders it may not read (skipped with a warning instead of aborting the listing), dangling links.
template <typename Fn>
void walk_files(const fs::path& root, const Fn& on_file) {
  std::set<std::pair<dev_t, ino_t>> visited;
  std::vector<fs::path> stack{root};
  while (!stack.empty()) {
    const fs::path dir = stack.back();
    stack.pop_back();
    struct stat st{};
    if (::stat(dir.c_str(), &st) != 0 || !visited.insert({st.st_dev, st.st_ino}).second) continue;  // loop / gone
    std::error_code ec;
    fs::directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec), end;
    if (ec) {
      std::fprintf(stderr, "warning: skipping folder '%s': %s\n", dir.c_str(), ec.message().c_str());
      continue;
    }
    std::vector<fs::path> subdirs;
    for (; it != end; it.increment(ec)) {
      if (ec) break;
      std::error_code ec2;
      if (it->is_directory(ec2)) subdirs.push_back(it->path());
      else if (it->is_regular_file(ec2)) on_file(it->path());
    }
    if (ec) std::fprintf(stderr, "warning: stopped listing folder '%s': %s\n", dir.c_str(), ec.message().c_str());
    std::sort(subdirs.rbegin(), subdirs.rend());  // popped in sorted order
    for (auto& d : subdirs) stack.push_back(d);
  }
}

}  // namespace

std::vector<std::string> list_image_files(const std::string& dir) {
  std::vector<std::string> files;
  walk_files(dir, [&](const fs::path& p) {
    if (has_image_extension(p.string())) files.push_back(p.string());
  });
  std::sort(files.begin(), files.end());
  return files;
}

namespace {

std::vector<std::string> glob_paths(const std::string& pattern) {
  std::vector<std::string> out;
  glob_t g{};
  if (::glob(pattern.c_str(), 0, nullptr, &g) == 0)
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  ::globfree(&g);
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace

std::vector<std::string> expand_image_inputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> out;
  for (const auto& in : inputs) {
    std::error_code ec;
    if (fs::is_directory(in, ec)) {
      auto files = list_image_files(in);
      MOH_CHECK(!files.empty(), "folder '", in, "' holds no image files (.jpg .jpeg .png .bmp .ppm .pgm .tif .webp)");
      out.insert(out.end(), files.begin(), files.end());
    } else if (in.find_first_of("*?[") != std::string::npos && !fs::exists(in, ec)) {
      auto files = glob_paths(in);
      MOH_CHECK(!files.empty(), "pattern '", in, "' matches no files");
      for (auto& f : files)
        if (fs::is_directory(f, ec)) {
          auto sub = list_image_files(f);
          out.insert(out.end(), sub.begin(), sub.end());
        } else {
          out.push_back(f);
        }
    } else {
      out.push_back(in);  // a missing file is reported when it is decoded, next to the others
    }
  }
  return out;
}

}  // namespace moh::vit
