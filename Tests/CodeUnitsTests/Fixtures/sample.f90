module geometry
contains
  function area(r) result(a)
    real :: r, a
    a = 3.14 * r * r
  end function area
end module geometry

program main
  print *, "hi"
end program main
