(define (square x)
  (* x x))

(define limit 10)
