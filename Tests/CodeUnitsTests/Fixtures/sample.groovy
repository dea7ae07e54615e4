import groovy.json.JsonSlurper

class Greeter {
    def greet(String name) {
        println "hello ${name}"
    }
}

def helper(x) {
    return x * 2
}
