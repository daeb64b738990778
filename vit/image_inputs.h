// Expansion of the pictures a user names on a command line (files, folders searched recursively, globs) into a
// sorted file list; torchvision ImageFolder's extension rule. No official counterpart (the official scripts read
// ImageFolder datasets only).
#pragma once
#include <string>
#include <vector>

namespace moh::vit {

// True for the extensions torchvision's ImageFolder accepts (.jpg .jpeg .png .ppm .bmp .pgm .tif .tiff .webp), any case.
bool has_image_extension(const std::string& path);

// Image files under `dir`, recursively, sorted. Symlink loops are entered once; unreadable sub-folders are skipped
// with a warning on stderr (the listing goes on).
std::vector<std::string> list_image_files(const std::string& dir);

// Files are kept as given (even missing ones: they fail later, per file); folders contribute their image files
// (recursively, sorted); arguments with * ? [ are globs. A folder or glob without images throws moh::Error.
std::vector<std::string> expand_image_inputs(const std::vector<std::string>& inputs);

}  // namespace moh::vit
