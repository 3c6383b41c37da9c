namespace HostVM.Vmm;

/// <summary>A request the VMM refuses: answered with 400 and <c>{"fault_message": Message}</c>; nothing was changed.</summary>
public sealed class VmmFault(string message) : Exception(message);
