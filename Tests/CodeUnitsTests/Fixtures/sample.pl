use strict;
package Greeter;

# Says hello.
sub greet {
    my ($name) = @_;
    print "hello $name\n";
}

1;
