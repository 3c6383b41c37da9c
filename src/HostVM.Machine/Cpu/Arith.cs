namespace HostVM.Machine.Cpu;

/// <summary>RISC-V division semantics: no traps; division by zero and overflow have defined results.</summary>
public static class Arith
{
    public static long Div(long a, long b) => b == 0 ? -1 : (a == long.MinValue && b == -1) ? a : a / b;

    public static long Rem(long a, long b) => b == 0 ? a : (a == long.MinValue && b == -1) ? 0 : a % b;

    public static int Div(int a, int b) => b == 0 ? -1 : (a == int.MinValue && b == -1) ? a : a / b;

    public static int Rem(int a, int b) => b == 0 ? a : (a == int.MinValue && b == -1) ? 0 : a % b;
}
