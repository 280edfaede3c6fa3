#include "test/support/names.h"

#include <random>

namespace picket::test_support {

std::string randomSuffix() {
  std::random_device random;
  const char* digits = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string out;
  for (int i = 0; i < 8; ++i) out += digits[random() % 36];
  return out;
}

}  // namespace picket::test_support
