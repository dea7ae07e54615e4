library(dplyr)

LIMIT <- 10

# Scales values.
scale_values <- function(x, factor = 2) {
  if (length(x) == 0) return(NULL)
  x * factor
}
