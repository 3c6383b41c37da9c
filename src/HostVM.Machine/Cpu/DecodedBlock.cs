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
}
