using System.Text;

namespace Demo {
    /// <summary>A tool.</summary>
    public class Tool : Base {
        public Tool(int n) { Count = n; }

        public int Run(string input) {
            foreach (var c in input) { Console.WriteLine(c); }
            return input.Length;
        }
    }

    public interface IRunner { void Run(); }
}
