#include <vector>

namespace geo {

/// A shape.
class Circle : public Shape {
public:
    double area() const {
        return compute(r);
    }
private:
    double r;
};

}

enum class Color { Red, Green };

int Circle::perimeter(int scale) {
    while (scale > 0) { scale--; }
    return std::max(scale, 1);
}
