import kotlin.math.max

const val LIMIT = 3

/** A box. */
class Box(val size: Int) : Shape() {
    fun grow(by: Int): Int {
        return max(size, by)
    }
}

interface Shape2 {
    fun area(): Double
}

fun top(x: Int) = x * 2
