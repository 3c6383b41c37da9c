namespace HostVM.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        Console.Error.WriteLine("hostvm: not yet wired up");
        return 2;
    }
}
