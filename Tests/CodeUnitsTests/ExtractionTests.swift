import Foundation
import Testing
@testable import CodeUnits

/// One small source file per language (Tests/CodeUnitsTests/Fixtures), checked for the units the
/// reference rules produce: names, types and line spans, then the analysis fields per language.
@Suite struct ExtractionTests {
    static let extractor = try! UnitExtractor(grammarDirectory: grammarDirectory)

    static func units(_ fixture: String) throws -> [CodeUnit] {
        let data = try Data(contentsOf: fixturesDirectory.appendingPathComponent(fixture))
        let extraction = extractor.extract(relativePath: fixture, data: data)
        #expect(extraction.skipReason == nil)
        #expect(extraction.warnings.isEmpty, "\(extraction.warnings)")
        return extraction.units
    }

    static func unit(_ units: [CodeUnit], _ name: String, _ type: UnitType? = nil) -> CodeUnit? {
        units.first { $0.name == name && (type == nil || $0.unitType == type) }
    }

    /// `type name start-end` of every unit except raw-code gaps, in file order.
    static let expectedOutlines: [String: [String]] = [
        "App.svelte": [
            "constant name 2-2",
            "function shout 3-5"
        ],
        "Justfile": [
            "function build 2-4",
            "function test 5-6"
        ],
        "Page.astro": [
            "constant title 2-2",
            "function shout 3-3"
        ],
        "Sample.cs": [
            "class Tool 4-12",
            "method Tool 6-6",
            "method Run 8-11",
            "class IRunner 14-14"
        ],
        "Sample.java": [
            "class UserStore 8-23",
            "method UserStore 12-14",
            "method add 17-22",
            "class Named 25-27"
        ],
        "Sample.kt": [
            "constant LIMIT 3-3",
            "class Box 6-10",
            "method grow 7-9",
            "class Shape2 12-14",
            "function top 16-16"
        ],
        "Sample.scala": [
            "constant Limit 3-3",
            "class Circle 6-8",
            "method area 7-7",
            "class Shape 10-12",
            "class Main 14-16",
            "method main 15-15"
        ],
        "api.proto": [
            "class User 5-7",
            "class Users 9-11",
            "method Get 10-10"
        ],
        "build.cmake": [
            "function add_tool 1-3"
        ],
        "comp.heex": [

        ],
        "conf.kdl": [

        ],
        "config.xml": [

        ],
        "data.dtd": [

        ],
        "default.nix": [
            "function pkgs 1-4"
        ],
        "doc.typ": [
            "class = Introduction 1-1",
            "class == Details 4-4"
        ],
        "lib.jsonnet": [

        ],
        "main.tf": [
            "class resource \"aws_instance\" \"web\" 1-3",
            "class variable \"region\" 5-7"
        ],
        "mod.wat": [
            "function $add 2-5"
        ],
        "page.j2": [

        ],
        "page.tmpl": [
            "function \"header\" 1-3"
        ],
        "paper.tex": [
            "class \\section{Introduction} 3-6"
        ],
        "plugin.vim": [
            "function Greet 2-4"
        ],
        "rules.bzl": [
            "function my_rule 3-4"
        ],
        "run.bat": [

        ],
        "sample.R": [
            "constant LIMIT 3-3",
            "function scale_values 6-9"
        ],
        "sample.c": [
            "constant LIMIT 4-4",
            "class node 7-9",
            "function sum 11-19"
        ],
        "sample.clj": [
            "class core 1-2",
            "function greet 4-7"
        ],
        "sample.cpp": [
            "class Circle 5-13",
            "method area 8-10",
            "class Color 17-17",
            "method perimeter 19-22"
        ],
        "sample.css": [
            "constant url 1-1",
            "class .button 3-5",
            "class @media (max-width: 600px) 7-9"
        ],
        "sample.dart": [
            "class Counter 5-13",
            "method increment 9-12",
            "function twice 15-15"
        ],
        "sample.erl": [
            "function add 5-6"
        ],
        "sample.ex": [
            "class Greeter 1-11",
            "method hello 5-8",
            "method secret 10-10"
        ],
        "sample.f90": [
            "class geometry 1-7",
            "method area 3-6",
            "class main 9-11"
        ],
        "sample.go": [
            "constant Size 8-8",
            "class Cache 10-13",
            "method Get 15-19",
            "function New 21-25"
        ],
        "sample.groovy": [
            "class Greeter 3-7",
            "method greet 4-6",
            "function helper 9-11"
        ],
        "sample.hs": [
            "function double 7-7",
            "class Shape 9-9",
            "function main 12-12"
        ],
        "sample.jl": [
            "constant LIMIT 3-3",
            "function add 6-8",
            "class Point 10-12"
        ],
        "sample.lua": [
            "function add 4-6",
            "function helper 8-10",
            "function method 12-14"
        ],
        "sample.m": [
            "class Greeter 3-5",
            "class Greeter 7-11",
            "method greet 8-10",
            "function add 13-15"
        ],
        "sample.ml": [
            "function incr 3-4",
            "class shape 6-6",
            "class Geo 8-10",
            "method area 9-9"
        ],
        "sample.php": [
            "constant VERSION 4-4",
            "class UserController 6-13",
            "method show 10-12",
            "function helper 15-17"
        ],
        "sample.pl": [
            "class Greeter 2-2",
            "function greet 5-8"
        ],
        "sample.py": [
            "constant MAX_SIZE 4-4",
            "class Greeter 8-16",
            "method greet 11-16",
            "function load 19-25"
        ],
        "sample.rb": [
            "class Parser 4-18",
            "method parse 6-13",
            "method build 15-17",
            "class Helpers 20-24",
            "method helper 21-23"
        ],
        "sample.rs": [
            "constant LIMIT 3-3",
            "class Point 5-9",
            "method new 12-17",
            "class Shape 20-22",
            "function main 24-30"
        ],
        "sample.scm": [
            "function square 1-2",
            "function limit 4-4"
        ],
        "sample.sql": [
            "class users 1-4",
            "class active 6-6",
            "function add 8-10"
        ],
        "sample.swift": [
            "constant maxCount 3-3",
            "class Counter 5-20",
            "method init 9-11",
            "method increment 13-19",
            "class Resettable 22-24",
            "function helper 26-28"
        ],
        "sample.ts": [
            "constant MAX 3-3",
            "class UserService 5-17",
            "method constructor 9-11",
            "method find 13-16",
            "class User 19-21",
            "function handler 23-25",
            "function helper 27-29"
        ],
        "sample.zig": [
            "constant std 1-1",
            "class Point 3-9",
            "method init 6-8",
            "function add 12-15"
        ],
        "schema.graphql": [
            "class User 1-4",
            "function GetUser 6-8"
        ],
        "style.scss": [
            "function @mixin center 3-5",
            "class .card 7-9"
        ],
        "token.sol": [
            "class Token 3-9",
            "method mint 6-8"
        ],
        "view.erb": [

        ]
    ]

    @Test(arguments: expectedOutlines.keys.sorted())
    func outline(fixture: String) throws {
        let outline = try Self.units(fixture).filter { $0.unitType != .rawcode }
            .map { "\($0.unitType.rawValue) \($0.name) \($0.line)-\($0.endLine)" }
        #expect(outline == Self.expectedOutlines[fixture])
    }

    /// Every non-empty line of every fixture belongs to a unit, and raw-code units only fill the gaps
    /// (they never overlap a definition), as the reference's `fill_raw_code_gaps` makes them.
    @Test(arguments: try! FileManager.default.contentsOfDirectory(atPath: fixturesDirectory.path).sorted())
    func everyNonEmptyLineIsCovered(fixture: String) throws {
        let units = try Self.units(fixture)
        let text = try String(contentsOf: fixturesDirectory.appendingPathComponent(fixture), encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        var covered = [Int](repeating: 0, count: lines.count + 1)
        var coveredByDefinition = [Bool](repeating: false, count: lines.count + 1)
        for u in units {
            #expect(u.line >= 1 && u.line <= u.endLine && u.endLine <= lines.count, "\(u.name) \(u.line)-\(u.endLine)")
            for l in u.line...min(u.endLine, lines.count) {
                covered[l] += 1
                if u.unitType != .rawcode { coveredByDefinition[l] = true }
            }
            #expect(u.code == lines[(u.line - 1)..<min(u.endLine, lines.count)].joined(separator: "\n") || u.unitType == .document)
        }
        for (i, line) in lines.enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            #expect(covered[i + 1] >= 1, "\(fixture):\(i + 1) not covered: \(line)")
        }
        for u in units where u.unitType == .rawcode {
            for l in u.line...u.endLine { #expect(!coveredByDefinition[l], "\(fixture): raw code overlaps line \(l)") }
            #expect(u.name == "raw_code_\(u.line)")
        }
    }

    @Test func python() throws {
        let units = try Self.units("sample.py")
        let greet = try #require(Self.unit(units, "greet"))
        #expect(greet.unitType == .method && greet.parentClass == "Greeter")
        #expect(greet.qualifiedName == "sample.py::Greeter::greet")
        #expect(greet.parameters == ["name", "args", "kwargs"])
        #expect(greet.docstring == "Greet someone.")
        #expect(greet.calls == ["join", "print", "range"])
        #expect(greet.hasLoops && greet.hasBranches && !greet.hasErrorHandling && greet.complexity == 3)
        #expect(greet.imports == ["os"])
        let greeter = try #require(Self.unit(units, "Greeter"))
        #expect(greeter.extends == "Base" && greeter.docstring == "Says hello.")
        let load = try #require(Self.unit(units, "load"))
        #expect(load.line == 19 && load.signature == "def load(path: str) -> dict:")
        #expect(load.returnType == "dict" && load.hasErrorHandling && load.variables == ["data"])
        let constant = try #require(Self.unit(units, "MAX_SIZE"))
        #expect(constant.unitType == .constant && constant.imports == ["os", "json"])
        #expect(Self.unit(units, "lowercase") == nil)
    }

    @Test func rust() throws {
        let units = try Self.units("sample.rs")
        let new = try #require(Self.unit(units, "new"))
        #expect(new.unitType == .method && new.parentClass == "Point" && new.line == 12)
        #expect(new.docstring == "Makes a point." && new.returnType == "Self" && new.parameters == ["x"])
        #expect(new.calls == ["println"] && new.variables == ["p"])
        let point = try #require(Self.unit(units, "Point"))
        #expect(point.line == 5 && point.docstring == "A point in space." && point.signature == "pub struct Point {")
        let main = try #require(Self.unit(units, "main"))
        #expect(main.calls == ["get", "new"] && main.hasBranches && main.complexity == 2)
        #expect(Self.unit(units, "area") == nil)  // trait bodies are not recursed
        #expect(Self.unit(units, "LIMIT")?.imports == ["std"])
    }

    @Test func typescriptAndJavaScriptShapes() throws {
        let units = try Self.units("sample.ts")
        let handler = try #require(Self.unit(units, "handler"))
        #expect(handler.unitType == .function && handler.line == 23 && handler.endLine == 25)
        #expect(handler.parameters == ["req"] && handler.returnType == "void" && handler.calls == ["readFile"])
        let service = try #require(Self.unit(units, "UserService"))
        #expect(service.extends == "Base" && service.docstring == "A user service." && service.line == 5)
        let find = try #require(Self.unit(units, "find"))
        #expect(find.parentClass == "UserService" && find.returnType == "Promise<User>" && find.calls == ["query"])
        #expect(Self.unit(units, "helper")?.returnType == "string")
    }

    @Test func go() throws {
        let units = try Self.units("sample.go")
        let get = try #require(Self.unit(units, "Get"))
        #expect(get.unitType == .method && get.parentClass == "Cache" && get.line == 15)
        #expect(get.docstring == "Get returns a value." && get.parameters == ["key"] && get.returnType == "(int, bool)")
        #expect(get.variables == ["ok", "v"])
        let new = try #require(Self.unit(units, "New"))
        #expect(new.parameters == ["a", "b"] && new.calls == ["Get", "Println"] && new.imports == ["fmt", "http"])
        #expect(Self.unit(units, "Size")?.imports == ["fmt", "http"])
    }

    @Test func javaCSharpKotlinScala() throws {
        let java = try Self.units("Sample.java")
        let add = try #require(Self.unit(java, "add"))
        #expect(add.docstring == "Adds a user." && add.returnType == "boolean" && add.hasBranches && add.calls == ["add"])
        let store = try #require(Self.unit(java, "UserStore", .class))
        #expect(store.signature == "public class UserStore extends Store {" && store.extends == "Store" && store.imports == ["List"])
        let cs = try Self.units("Sample.cs")
        let run = try #require(Self.unit(cs, "Run"))
        #expect(run.hasLoops && run.returnType == "int" && run.calls == ["WriteLine"])
        #expect(Self.unit(cs, "Tool", .class)?.docstring == "A tool.")
        let kt = try Self.units("Sample.kt")
        #expect(Self.unit(kt, "grow")?.parentClass == "Box")
        #expect(Self.unit(kt, "Box")?.extends == "Shape")
        #expect(Self.unit(kt, "area") == nil)  // interface bodies are not recursed
        let scala = try Self.units("Sample.scala")
        #expect(Self.unit(scala, "main")?.parameters == ["args"])
        #expect(Self.unit(scala, "Circle")?.extends == "Shape")
    }

    @Test func cFamily() throws {
        let c = try Self.units("sample.c")
        let sum = try #require(Self.unit(c, "sum"))
        #expect(sum.line == 11 && sum.docstring == "Sums values." && sum.parameters == ["values", "n"])
        #expect(sum.returnType == "int" && sum.hasLoops && sum.calls == ["printf"] && sum.variables == ["i", "total"])
        #expect(Self.unit(c, "LIMIT")?.imports == ["stdio", "util"])
        let cpp = try Self.units("sample.cpp")
        let perimeter = try #require(Self.unit(cpp, "perimeter"))
        #expect(perimeter.unitType == .method && perimeter.parentClass == "Circle" && perimeter.calls == ["max"])
        #expect(Self.unit(cpp, "Circle")?.extends == "Shape")
        #expect(Self.unit(cpp, "area")?.parentClass == "Circle")
    }

    @Test func swiftRubyPhp() throws {
        let swift = try Self.units("sample.swift")
        let increment = try #require(Self.unit(swift, "increment"))
        #expect(increment.parameters == ["step"] && increment.docstring == "Increments." && increment.parentClass == "Counter")
        #expect(Self.unit(swift, "Counter")?.extends == "Base")
        #expect(Self.unit(swift, "reset") == nil)  // protocol bodies are not recursed
        let ruby = try Self.units("sample.rb")
        let parse = try #require(Self.unit(ruby, "parse"))
        #expect(parse.docstring == "Parses text." && parse.hasBranches && parse.imports == ["json"])
        #expect(Self.unit(ruby, "build")?.parentClass == "Parser")
        #expect(Self.unit(ruby, "Parser")?.extends == "Base")
        let php = try Self.units("sample.php")
        #expect(Self.unit(php, "show")?.parentClass == "UserController")
        #expect(Self.unit(php, "UserController")?.docstring == "A controller.")
    }

    /// Source with syntax errors yields ERROR nodes (symbol ids outside the grammar table): units are
    /// still made for what parses, and every line is still covered.
    @Test func syntaxErrorsDoNotBreakExtraction() throws {
        for (path, text) in [("e.py", "def f(:\n    return )))\nclass\n"), ("e.ts", "function (a b c {{\n}}}\nconst = ;\n"),
                             ("e.rs", "fn main( {\n let = ;\n"), ("e.vue", "<script>\nfunction (\n</script>\n<template><div></template>\n")] {
            let extraction = Self.extractor.extract(relativePath: path, data: Data(text.utf8))
            #expect(extraction.skipReason == nil)
            let covered = Set(extraction.units.flatMap { Array($0.line...$0.endLine) })
            for (i, line) in text.split(separator: "\n").enumerated() where !line.isEmpty { #expect(covered.contains(i + 1), "\(path):\(i + 1)") }
        }
    }

    /// Every grammar a language names is in the bundle (QML is the known exception, tested as the
    /// missing-grammar fallback), and every bundle grammar is used by some language or embedded parse.
    @Test func languageTableMatchesTheBundle() throws {
        struct Manifest: Decodable { let languages: [String: GrammarRegistry.ManifestEntry] }
        let manifest = try JSONDecoder().decode(Manifest.self, from: Data(contentsOf: grammarDirectory.appendingPathComponent("manifest.json")))
        let bundle = Set(manifest.languages.keys)
        let named = Set(Language.table.compactMap { $0.0.grammar })
        #expect(named.subtracting(bundle) == ["qmljs"])
        // Grammars whose formats are indexed as text, or that only serve other grammars.
        let unused: Set<String> = ["markdown", "markdown_inline", "yaml", "toml", "json", "json5", "jsonc", "bash", "powershell",
                                   "dockerfile", "make", "asciidoc", "org", "rst", "ini", "properties", "gitignore", "php_only"]
        #expect(bundle.subtracting(named).subtracting(unused).isEmpty, "\(bundle.subtracting(named).subtracting(unused))")
        for language in Language.table.map(\.0) where !language.isTextFormat && language.grammar != "qmljs" {
            #expect(LanguageRules.table[language.name] != nil, "no rules for \(language.name)")
        }
    }

    @Test func otherReferenceLanguages() throws {
        let lua = try Self.units("sample.lua")
        #expect(Self.unit(lua, "add")?.docstring == "Adds numbers.")
        #expect(Self.unit(lua, "method")?.hasLoops == true)
        let ex = try Self.units("sample.ex")
        let hello = try #require(Self.unit(ex, "hello"))
        #expect(hello.unitType == .method && hello.parentClass == "Greeter" && hello.docstring == "Says hello." && hello.calls == ["puts"])
        let ml = try Self.units("sample.ml")
        #expect(Self.unit(ml, "incr")?.docstring == "Adds one.")
        #expect(Self.unit(ml, "area")?.parentClass == "Geo")
        let r = try Self.units("sample.R")
        let scale = try #require(Self.unit(r, "scale_values"))
        #expect(scale.parameters == ["x", "factor"] && scale.hasBranches && scale.docstring == "Scales values.")
        let zig = try Self.units("sample.zig")
        #expect(Self.unit(zig, "init")?.parentClass == "Point")
        #expect(Self.unit(zig, "add")?.docstring == "Adds two numbers.")
        let jl = try Self.units("sample.jl")
        #expect(Self.unit(jl, "add")?.docstring == "Adds numbers.")
        let css = try Self.units("sample.css")
        #expect(Self.unit(css, "@media (max-width: 600px)")?.unitType == .class)
        let dart = try Self.units("sample.dart")
        #expect(Self.unit(dart, "increment")?.endLine == 12)
    }
}
