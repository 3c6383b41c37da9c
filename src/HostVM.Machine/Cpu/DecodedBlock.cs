namespace HostVM.Machine.Cpu;

/// <summary>
/// A straight run of decoded instructions inside one physical page, ending at a control-flow,
/// system or CSR instruction, the page end or a length limit.
/// </summary>
public sealed class DecodedBlock
{
    public const int MaxInstructions = 64;

    public DecodedBlock(DecodedInsn[] instructions, int count)
    {
        Instructions = instructions;
        Count = count;
    }

    public DecodedInsn[] Instructions { get; }

    public int Count { get; }

    /// <summary>Set when a store dropped this block's page: harts' jump caches must not run it again.</summary>
    public bool Invalidated { get; set; }
}
