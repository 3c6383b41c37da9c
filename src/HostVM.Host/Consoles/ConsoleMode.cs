namespace HostVM.Host.Consoles;

/// <summary>What a console connection may do: watch reads the output; write also types (one writer per VM).</summary>
public enum ConsoleMode
{
    Watch,
    Write,
}
