using System.CommandLine;
using System.CommandLine.Invocation;
using HostVM.Vmm;

namespace HostVM.VmmHost;

/// <summary>
/// <c>hostvm-vmm</c>: the VMM alone, compiled ahead of time, for the daemon to run once per VM. It takes
/// the options of <c>hostvm vmm</c> (<see cref="VmmCommandLine"/>) without the CLI's other commands, so
/// it starts in milliseconds and carries no JIT, daemon or CLI code in its memory.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        var parse = VmmCommandLine.AddTo(new RootCommand(VmmCommandLine.Description)).Parse(args);
        if (parse.Action is ParseErrorAction)
        {
            // One line per mistake on stderr (which the daemon keeps in vmm.log) and the VMM's exit
            // code for bad input, as `hostvm vmm` gives; not the whole help on stdout, the guest's console.
            foreach (var error in parse.Errors)
            {
                Console.Error.WriteLine($"hostvm-vmm: {error.Message}");
            }

            Console.Error.WriteLine("hostvm-vmm: see `hostvm-vmm --help`.");
            return VmmProcess.ExitBadInput;
        }

        return parse.Invoke();
    }
}
