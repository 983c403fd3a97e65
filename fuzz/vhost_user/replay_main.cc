// Plain driver for the fuzz target (no libFuzzer): runs every file given on
// the command line (or every file of the directories given) through
// LLVMFuzzerTestOneInput once. Registered with ctest over the corpus so that
// the seeds, and any crash reproducer added to it, run on every build.
#include <dirent.h>
#include <sys/stat.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

static int run_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::vector<uint8_t> buf((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  LLVMFuzzerTestOneInput(buf.data(), buf.size());
  return 1;
}

int main(int argc, char** argv) {
  int n = 0;
  for (int i = 1; i < argc; ++i) {
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      std::fprintf(stderr, "cannot read %s\n", argv[i]);
      return 2;
    }
    if (!S_ISDIR(st.st_mode)) {
      n += run_file(argv[i]);
      continue;
    }
    DIR* d = opendir(argv[i]);
    while (dirent* e = readdir(d))
      if (e->d_name[0] != '.') n += run_file(std::string(argv[i]) + "/" + e->d_name);
    closedir(d);
  }
  std::printf("replayed %d inputs\n", n);
  return n > 0 ? 0 : 2;
}
