module Main where

import Data.List (sort)

-- | Doubles a number.
double :: Int -> Int
double x = x * 2

data Shape = Circle Float | Square Float

main :: IO ()
main = print (double 3)
