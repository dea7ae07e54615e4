import scala.collection.mutable

val Limit = 4

/** A shape. */
class Circle(r: Double) extends Shape {
  def area(): Double = math.Pi * r * r
}

trait Shape {
  def area(): Double
}

object Main {
  def main(args: Array[String]): Unit = println(new Circle(1.0).area())
}
